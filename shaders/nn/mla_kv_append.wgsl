// MLA's new cache rows, in one pass: for each token, kv_a_proj_with_mqa's output [latent (KVR),
// k_pe (DR)] (columns kv_off .. of a row of x, pitch_x apart) -> the latent normalised (RMSNorm with
// w, as rms_norm.wgsl), k_pe rotated by the token's position (rope_pair.wgsl), both packed as
// 16-bit pairs (bf16 or f16, as mla/append.wgsl) into the cache row at the token's slot (block *
// block_size + offset; a slot outside the cache writes nothing). One workgroup per token;
// invocation l takes the row's words l, l + WG, ... (PER of them, loaded at once).
// Holes: WG, PER, KVR, DR, PACK_KIND (1 bf16, 2 f16), K_PITCH_WORDS, INTERLEAVE (prelude),
// Params (typegpu struct), wg_sum, pack_pair and rope helpers.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<i32>;
@group(0) @binding(4) var<storage, read> slots: array<i32>;
@group(0) @binding(5) var<storage, read> table: array<f32>;
@group(0) @binding(6) var<storage, read_write> kcache: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let words = (KVR + DR) / 2u;
  let t = min(wid.x + wid.y * params.grid_x, params.tokens - 1u);
  let base = t * params.pitch_x + params.kv_off;
  var v: array<vec2<f32>, PER>;
  var ss = 0.0;
  // @unroll
  for (var i = 0u; i < PER; i++) {
    let c = 2u * min(lid + i * WG, words - 1u);
    v[i] = vec2<f32>(x[base + c], x[base + c + 1u]);
    if (lid + i * WG < words && c < KVR) { ss = ss + dot(v[i], v[i]); }
  }
  let r = inverseSqrt(wg_sum(ss, lid) / f32(KVR) + params.eps);
  let slot = slots[t];
  if (wid.x + wid.y * params.grid_x >= params.tokens || slot < 0 || u32(slot) >= params.num_rows) { return; }
  let half = DR / 2u;
  let pos = u32(positions[t]);
  // @unroll
  for (var i = 0u; i < PER; i++) {
    let word = lid + i * WG;
    let c = 2u * word;
    var out = v[i] * r * vec2<f32>(w[min(c, KVR - 2u)], w[min(c, KVR - 2u) + 1u]);
    if (c >= KVR) {
      // Each of the two dims from its own pair (in the half-split layout a word holds two pairs' dims).
      for (var k = 0u; k < 2u; k = k + 1u) {
        let j = c - KVR + k;
        let p = rope_pair_of(j, half);
        let ab = base + KVR + rope_pair(p, half);
        let rot = rope_rotate(vec2<f32>(x[ab.x], x[ab.y]), rope_cs(pos, p, half, params.max_pos));
        out[k] = select(rot.x, rot.y, j == rope_pair(p, half).y);
      }
    }
    if (word < words) { kcache[u32(slot) * K_PITCH_WORDS + word] = pack_pair(out, PACK_KIND); }
  }
}
