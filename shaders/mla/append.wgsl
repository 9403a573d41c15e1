// appendKvcache: new rows [n, h_kv, d] (f32 or bf16) written into the cache at their slots
// (block * block_size + offset). One invocation per (token, kv head, chunk of up to 128 channels);
// in the fp8 layout a chunk is one scale tile of the first D_NOPE channels, or a piece of the bf16 rest.
// Holes: WG, D, D_NOPE, FP8_TILE, FP8_TILES, CHUNKS, K_KIND, IN_BF16, K_PITCH_WORDS (prelude), Params.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> slots: array<i32>;
@group(0) @binding(3) var<storage, read_write> kcache: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (id >= params.n * params.h_kv * CHUNKS) { return; }
  let chunk = id % CHUNKS;
  let tg = id / CHUNKS;
  let token = tg / params.h_kv;
  let g = tg % params.h_kv;
  let slot = slots[token];
  if (slot < 0 || u32(slot) >= params.num_rows) { return; }
  let src = tg * params.pitch_x;
  let dst = (u32(slot) * params.h_kv + g) * K_PITCH_WORDS;
  if (K_KIND == 2u && chunk < FP8_TILES) {
    let lo = chunk * FP8_TILE;
    let hi = min(D_NOPE, lo + FP8_TILE);
    var amax = 0.0;
    for (var c = lo; c < hi; c = c + 1u) { amax = max(amax, abs(load_x(src + c))); }
    // The smallest power of two >= max(amax / 448, 1e-4), exactly (see kvformat.ts).
    let s = bitcast<u32>(max(select(0.0, div_rn(amax, 448.0), amax > 0.0), 1e-4));
    let e = (s >> 23u) + select(0u, 1u, (s & 0x7fffffu) != 0u);
    let scale = bitcast<f32>(e << 23u);
    let inv = bitcast<f32>((254u - e) << 23u);
    kcache[dst + (D_NOPE + 4u * chunk) / 4u] = bitcast<u32>(scale);
    for (var c = lo; c < hi; c = c + 4u) {
      var word = 0u;
      for (var j = 0u; j < 4u; j = j + 1u) { word = word | (e4m3_encode(bitcast<u32>(load_x(src + c + j) * inv)) << (8u * j)); }
      kcache[dst + c / 4u] = word;
    }
    return;
  }
  // bf16/f16 channels: the whole row (bf16/f16 caches) or the part after D_NOPE (fp8), 128 at a time.
  var first = 0u;
  var words = dst;
  if (K_KIND == 2u) {
    first = D_NOPE;
    words = dst + (D_NOPE + 4u * FP8_TILES) / 4u;
  }
  let lo = first + (chunk - select(0u, FP8_TILES, K_KIND == 2u)) * 128u;
  let hi = min(D, lo + 128u);
  for (var c = lo; c < hi; c = c + 2u) {
    let v = vec2<f32>(load_x(src + c), select(0.0, load_x(src + c + 1u), c + 1u < hi));
    kcache[words + (c - first) / 2u] = pack_pair(v, select(1u, 2u, K_KIND == 1u));
  }
}
