// Tiled GEMM for many rows: a workgroup computes a BM x BN tile of D, staging BK-deep slabs of A and
// B (decoded to f32, unscaled) in workgroup memory; each invocation keeps a TM x TN register tile.
// FP8: products of one 128-wide k slice accumulate unscaled in `part`, then acc += part * sa * sb
// once per slice (DeepGEMM's promotion); f32 throughout. Grid: x = n tiles, y = m tiles, z = group
// region (masked layout) x k split (dense layout: f32 partials to a workspace at out_row0 * split,
// summed by splitk_reduce.wgsl). An invocation's TN columns are TN/4 runs of 4, BN/(TN/4) apart, so
// that neighbouring invocations read neighbouring vec4s of the B slab (no bank conflicts). Holes: BM, BN, BK, TM, TN, WG, FP8, A_KIND, B_KIND, A_WORDS, B_WORDS,
// OUT_KIND, C_KIND, TM4 = TM/4, TN4 = TN/4, TN2 = TN/2 (prelude), Params. Loops over the register
// tile are unrolled by the JIT (// @unroll) so that every index is a constant and the tile stays in registers.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

const TX = BN / TN;
const SLICE_TILES = 128u / BK;
var<workgroup> as_: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> bs_: array<vec4<f32>, BK * BN / 4u>;
var<workgroup> info_wg: vec2<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let split = wid.z % params.splits;
  let z = wid.z / params.splits;
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  if (lid == 0u) { info_wg = vec2<u32>(mode_rows(z), bitcast<u32>(mode_group(z, m0))); }
  let info = workgroupUniformLoad(&info_wg);
  let rows = info.x;
  let gt = bitcast<i32>(info.y);
  if (m0 >= rows) { return; }
  let live_tile = gt >= 0i && u32(gt) < params.groups;
  let g = select(0u, u32(gt), live_tile);
  let tx = lid % TX;
  let ty = lid / TX;
  let r_base = z * params.m;

  var acc: array<vec4<f32>, TM * TN4>;
  var part: array<vec4<f32>, TM * TN4>;
  let t_lo = split * params.split_slices * SLICE_TILES;
  let t_hi = select(0u, min((params.k + BK - 1u) / BK, t_lo + params.split_slices * SLICE_TILES), live_tile);
  for (var t = t_lo; t < t_hi; t++) {
    let k0 = t * BK;
    for (var i = lid; i < BM * BK / 4u; i += WG) {
      let r = i / (BK / 4u);
      let c = 4u * (i % (BK / 4u));
      var v = vec4<f32>(0.0);
      if (m0 + r < rows) { v = load_a4(r_base + m0 + r, k0 + c); }
      for (var j = 0u; j < 4u; j++) { as_[((c + j) * BM + r) / 4u][r % 4u] = v[j]; }
    }
    for (var i = lid; i < BN * BK / 4u; i += WG) {
      let r = i / (BK / 4u);
      let c = 4u * (i % (BK / 4u));
      var v = vec4<f32>(0.0);
      if (n0 + r < params.n) { v = load_b4(g * params.n + n0 + r, k0 + c); }
      for (var j = 0u; j < 4u; j++) { bs_[((c + j) * BN + r) / 4u][r % 4u] = v[j]; }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var av: array<vec4<f32>, TM4>;
      var bv: array<vec4<f32>, TN4>;
      // @unroll
      for (var i = 0u; i < TM4; i++) {
        av[i] = as_[(kk * BM + ty * TM) / 4u + i];
      }
      // @unroll
      for (var j = 0u; j < TN4; j++) {
        bv[j] = bs_[kk * BN / 4u + j * TX + tx];
      }
      // @unroll
      for (var i = 0u; i < TM; i++) {
        let ai = vec4<f32>(av[i / 4u][i % 4u]);
        // @unroll
        for (var j = 0u; j < TN4; j++) {
          part[i * TN4 + j] = fma(ai, bv[j], part[i * TN4 + j]);
        }
      }
    }
    workgroupBarrier();
    // Promote: once per 128-wide k slice for FP8, once at the end otherwise.
    if ((FP8 && (t + 1u) % SLICE_TILES == 0u) || t + 1u == t_hi) {
      let s = k0 / 128u;
      let sb_s = scale_b(g, min(n0 + tx * 4u, params.n - 1u), s);
      // @unroll
      for (var i = 0u; i < TM; i++) {
        let sc = scale_a(r_base + min(m0 + ty * TM + i, rows - 1u), s) * sb_s;
        // @unroll
        for (var j = 0u; j < TN4; j++) {
          acc[i * TN4 + j] = fma(part[i * TN4 + j], vec4<f32>(sc), acc[i * TN4 + j]);
          part[i * TN4 + j] = vec4<f32>(0.0);
        }
      }
    }
  }

  // @unroll
  for (var i = 0u; i < TM; i++) {
    let row = m0 + ty * TM + i;
    if (row < rows) {
      let zero = !live_tile || !row_live(r_base + row, gt);
      // @unroll
      for (var j = 0u; j < TN2; j++) {
        let col = n0 + (j / 2u) * (4u * TX) + tx * 4u + 2u * (j % 2u);
        if (col < params.n) {
          let v = acc[i * TN4 + j / 2u];
          store_pair(params.out_row0 * split + r_base + row, col, select(v.xy, v.zw, (j & 1u) == 1u), zero);
        }
      }
    }
  }
}
