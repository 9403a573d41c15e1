// Small-m GEMM (decode: m = 1..16 rows per group): memory-bound, every weight byte read once.
// A workgroup of G groups of 32 lanes covers G*NC output columns; each lane group owns NC columns
// (rows of B) and walks k with its 32 lanes side by side (coalesced words). With STAGE_A (MR >= 8)
// each iteration stages MR rows x 32*VEC chunks of A (4 k values each, decoded, unscaled) and their
// 1x128 scales in workgroup memory, shared by all columns; with few rows, lanes read A directly
// (it stays in L1) and the loop has no barriers, so B loads stream without stalls. Each lane sums the 4 products of a chunk
// unscaled and applies sa*sb once for them (a chunk never straddles a 128-wide k slice); lanes are
// summed through workgroup memory at the end. Loops over the per-lane registers are unrolled by the
// JIT (// @unroll) so that acc, bv and sbv stay in registers. Split-k (grid y) writes f32 partials to a workspace
// (out_row0 = split * rows) that gemm_splitk_reduce.wgsl sums.
// Holes: WG, G, NC, MR, VEC, STAGE_A, WIDE, A_KIND, B_KIND, A_WORDS, B_WORDS, OUT_KIND, C_KIND (prelude), Params.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

// Chunks (4 k values) per iteration: each lane takes one word, or with WIDE one vec4<u32> (16 e4m3).
const CH = select(32u, 128u, WIDE) * VEC;
// Sized 1 when A is not staged (indices are taken modulo the size so that they stay in bounds).
const A_TILE = select(1u, MR * CH, STAGE_A);
const SA_TILE = select(1u, MR * VEC, STAGE_A);
var<workgroup> a_tile: array<vec4<f32>, A_TILE>;
var<workgroup> sa_tile: array<f32, SA_TILE>;
var<workgroup> red: array<f32, WG * NC>;
var<workgroup> res: array<f32, MR * G * NC>;
var<workgroup> rows_wg: u32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % 32u;
  let grp = lid / 32u;
  let z = wid.z;
  let col_blk = wid.x * (G * NC);
  if (lid == 0u) { rows_wg = mode_rows(z); }
  let rows = workgroupUniformLoad(&rows_wg);
  let g = u32(mode_group(z, 0u));
  let s_lo = wid.y * params.split_slices;
  let c_lo = s_lo * 32u;
  let c_hi = min(min(params.kb, s_lo + params.split_slices) * 32u, params.k_chunks);
  let r_base = z * params.m;

  for (var r0 = 0u; r0 < rows; r0 += MR) {
    // Explicitly zeroed: some compilers hoist a loop-body `var` and keep its old value.
    var acc = array<f32, MR * NC>();
    for (var c0 = c_lo; c0 < c_hi; c0 += CH) {
      if (STAGE_A) {
        workgroupBarrier();
        for (var i = lid; i < MR * CH; i += WG) {
          let r = i / CH;
          let ch = c0 + i % CH;
          var v = vec4<f32>(0.0);
          if (r0 + r < rows && ch < c_hi) { v = load_a4(r_base + r0 + r, ch * 4u); }
          a_tile[i % A_TILE] = v;
        }
        for (var i = lid; i < MR * VEC; i += WG) {
          let r = i / VEC;
          let s = c0 / 32u + i % VEC;
          sa_tile[i % SA_TILE] = select(0.0, scale_a(r_base + r0 + r, s), r0 + r < rows && s * 32u < c_hi);
        }
        workgroupBarrier();
      }
      // @unroll
      for (var v = 0u; v < VEC; v++) {
        let chw = c0 + v * 128u + lane * 4u;
        if (WIDE && chw < c_hi) {
          // 4 chunks of one 128-wide slice per lane: 16 products per scale.
          let s = chw / 32u;
          var bq: array<array<vec4<f32>, 4>, NC>;
          var sbv: array<f32, NC>;
          // @unroll
          for (var j = 0u; j < NC; j++) {
            let col = min(col_blk + grp * NC + j, params.n - 1u);
            let w = load_b16(g * params.n + col, chw);
            bq[j] = array<vec4<f32>, 4>(e4m3x4_paired(w.x), e4m3x4_paired(w.y), e4m3x4_paired(w.z), e4m3x4_paired(w.w));
            sbv[j] = scale_b(g, col, s);
          }
          // @unroll
          for (var r = 0u; r < MR; r++) {
            let ra = r_base + min(r0 + r, rows - 1u);
            let a0 = load_a4(ra, chw * 4u);
            let a1 = load_a4(ra, chw * 4u + 4u);
            let a2 = load_a4(ra, chw * 4u + 8u);
            let a3 = load_a4(ra, chw * 4u + 12u);
            let sar = scale_a(ra, s);
            // @unroll
            for (var j = 0u; j < NC; j++) {
              let p = dot(a0, bq[j][0]) + dot(a1, bq[j][1]) + dot(a2, bq[j][2]) + dot(a3, bq[j][3]);
              acc[r * NC + j] = fma(p, sar * sbv[j], acc[r * NC + j]);
            }
          }
        }
        let ch = c0 + v * 32u + lane;
        if (!WIDE && ch < c_hi) {
          let s = ch / 32u;
          var bv: array<vec4<f32>, NC>;
          var sbv: array<f32, NC>;
          // @unroll
          for (var j = 0u; j < NC; j++) {
            // Columns past n read the last column again; their sums are never stored.
            let col = min(col_blk + grp * NC + j, params.n - 1u);
            bv[j] = load_b4(g * params.n + col, ch * 4u);
            sbv[j] = scale_b(g, col, s);
          }
          // @unroll
          for (var r = 0u; r < MR; r++) {
            var av: vec4<f32>;
            var sar: f32;
            if (STAGE_A) {
              av = a_tile[(r * CH + v * 32u + lane) % A_TILE];
              sar = sa_tile[(r * VEC + v) % SA_TILE];
            } else {
              // Rows past the count read the last row again; their sums are never stored.
              let ra = r_base + min(r0 + r, rows - 1u);
              av = load_a4(ra, ch * 4u);
              sar = scale_a(ra, s);
            }
            // @unroll
            for (var j = 0u; j < NC; j++) {
              acc[r * NC + j] = fma(dot(av, bv[j]), sar * sbv[j], acc[r * NC + j]);
            }
          }
        }
      }
    }
    // Sum the 32 lanes of each column; the read order is rotated per group to spread banks.
    // @unroll
    for (var r = 0u; r < MR; r++) {
      workgroupBarrier();
      // @unroll
      for (var j = 0u; j < NC; j++) {
        red[lid * NC + j] = acc[r * NC + j];
      }
      workgroupBarrier();
      if (lid < G * NC) {
        let gg = lid / NC;
        let j = lid % NC;
        var sum = 0.0;
        for (var l = 0u; l < 32u; l++) { sum += red[(gg * 32u + ((l + gg) & 31u)) * NC + j]; }
        res[r * G * NC + lid] = sum;
      }
    }
    workgroupBarrier();
    let half = G * NC / 2u;
    for (var p = lid; p < MR * half; p += WG) {
      let r = p / half;
      let q = p % half;
      let col = col_blk + 2u * q;
      if (r0 + r < rows && col < params.n) {
        let v = vec2<f32>(res[r * G * NC + 2u * q], res[r * G * NC + 2u * q + 1u]);
        store_pair(params.out_row0 * wid.y + r_base + r0 + r, col, v, false);
      }
    }
  }
}
