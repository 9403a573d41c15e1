// Small-m GEMM (decode: m = 1..16 rows per group): memory-bound, every weight byte read once.
// A workgroup of G groups of 32 lanes covers COLS = (G / KS) * NC output columns: KS lane groups
// (KL = 32 * KS lanes) share NC columns (rows of B) and walk k side by side, so that a small matrix
// still puts enough lanes and loads in flight without a second (split-k) pass. Per iteration each
// lane takes VEC words of each of its B rows (one u32, or with WIDE one vec4<u32> = 16 e4m3 values),
// all loads issued before any math. With STAGE_A (MR >= 8, not WIDE) the iteration's MR rows of A
// (decoded, unscaled) and their 1x128 scales are staged in workgroup memory, shared by all columns;
// with few rows, lanes read A directly (it stays in L1) and the loop has no barriers. Each lane
// sums the 4 (16 with WIDE) products of a chunk unscaled and applies sa*sb once for them (a chunk
// never straddles a 128-wide k slice); the KL lanes of a column are summed by a fixed tree in
// workgroup memory (same bits every run). Loops over per-lane registers are unrolled by the JIT
// (// @unroll) so that acc and the loaded words stay in registers. Split-k (grid y, dense only)
// writes f32 partials to a workspace (out_row0 = split * rows) that splitk_reduce.wgsl sums.
// Grid z names the region through mode_z (z_plain.wgsl, or z_routed.wgsl: only the groups tokens picked).
// A's rows come through a_row (a_rows_plain.wgsl, or a_rows_gather.wgsl: a masked layout's slots
// read straight from the token rows), looked up once per pass of MR rows.
// Holes: WG, G, KS, NC, MR, VEC, STAGE_A, WIDE, A_KIND, B_KIND, A_WORDS, B_WORDS, OUT_KIND, C_KIND (prelude), Params.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

const KL = 32u * KS;
const COLS = (G / KS) * NC;
// Chunks (4 k values) per iteration, and 128-wide k slices per iteration.
const STEP = select(1u, 4u, WIDE) * KL * VEC;
const SLICES = STEP / 32u;
// Sized 1 when A is not staged (indices are taken modulo the size so that they stay in bounds).
const A_TILE = select(1u, MR * STEP, STAGE_A);
const SA_TILE = select(1u, MR * SLICES, STAGE_A);
var<workgroup> a_tile: array<vec4<f32>, A_TILE>;
var<workgroup> sa_tile: array<f32, SA_TILE>;
var<workgroup> red: array<f32, NC * WG>;
var<workgroup> res: array<f32, MR * COLS>;
var<workgroup> region_wg: vec2<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kl = lid % KL;
  let cg = lid / KL;
  let col_blk = wid.x * COLS;
  if (lid == 0u) {
    let zz = mode_z(wid.z);
    var rz = 0u;
    if (zz != NO_REGION) { rz = mode_rows(zz); }
    region_wg = vec2<u32>(zz, rz);
  }
  let region = workgroupUniformLoad(&region_wg);
  // A workgroup with no region has no rows: it loads and stores nothing.
  let z = select(region.x, 0u, region.x == NO_REGION);
  let rows = region.y;
  let g = u32(mode_group(z, 0u));
  let s_lo = wid.y * params.split_slices;
  let c_lo = s_lo * 32u;
  let c_hi = min(min(params.kb, s_lo + params.split_slices) * 32u, params.k_chunks);
  let r_base = z * params.m;
  // Columns past n read the last column again; their sums are never stored.
  var bcol: array<u32, NC>;
  // @unroll
  for (var j = 0u; j < NC; j++) {
    bcol[j] = min(col_blk + cg * NC + j, params.n - 1u);
  }

  for (var r0 = 0u; r0 < rows; r0 += MR) {
    // Explicitly zeroed: some compilers hoist a loop-body `var` and keep its old value.
    var acc = array<f32, MR * NC>();
    // A's row for each of the pass's rows, for the unrolled loops (rows past the count read the last
    // row again; their sums are never stored). Staging looks rows up itself: a runtime index into
    // this array would put it in local memory.
    var ar: array<u32, MR>;
    // @unroll
    for (var r = 0u; r < MR; r++) {
      ar[r] = a_row(r_base + min(r0 + r, rows - 1u));
    }
    for (var c0 = c_lo; c0 < c_hi; c0 += STEP) {
      if (STAGE_A) {
        workgroupBarrier();
        for (var i = lid; i < MR * STEP; i += WG) {
          let r = i / STEP;
          let ch = c0 + i % STEP;
          var v = vec4<f32>(0.0);
          if (r0 + r < rows && ch < c_hi) { v = load_a4(a_row(r_base + r0 + r), ch * 4u); }
          a_tile[i % A_TILE] = v;
        }
        for (var i = lid; i < MR * SLICES; i += WG) {
          let r = i / SLICES;
          let s = c0 / 32u + i % SLICES;
          sa_tile[i % SA_TILE] = select(0.0, scale_a(a_row(r_base + min(r0 + r, rows - 1u)), s), r0 + r < rows && s * 32u < c_hi);
        }
        workgroupBarrier();
      }
      if (WIDE) {
        // Every load of the iteration first (out-of-range ones read the last chunk again and are not summed).
        var bw: array<vec4<u32>, VEC * NC>;
        // @unroll
        for (var v = 0u; v < VEC; v++) {
          // @unroll
          for (var j = 0u; j < NC; j++) {
            bw[v * NC + j] = load_b16(g * params.n + bcol[j], min(c0 + (v * KL + kl) * 4u, c_hi - 4u));
          }
        }
        // @unroll
        for (var v = 0u; v < VEC; v++) {
          let chw = c0 + (v * KL + kl) * 4u;
          let ch = min(chw, c_hi - 4u);
          let s = ch / 32u;
          var sbv: array<f32, NC>;
          var nan: array<bool, NC>;
          // @unroll
          for (var j = 0u; j < NC; j++) {
            sbv[j] = scale_b(g, bcol[j], s);
            nan[j] = e4m3_has_nan(bw[v * NC + j]);
          }
          // 16 products per (row, column), unscaled; one word (4 values) of B decoded at a time
          // keeps few registers live.
          var p = array<f32, MR * NC>();
          // @unroll
          for (var q = 0u; q < 4; q++) {
            var bq: array<vec4<f32>, NC>;
            // @unroll
            for (var j = 0u; j < NC; j++) {
              bq[j] = e4m3x4_checked(bw[v * NC + j][q], nan[j]);
            }
            // @unroll
            for (var r = 0u; r < MR; r++) {
              let av = load_a_chunk(ar[r], ch + q);
              // @unroll
              for (var j = 0u; j < NC; j++) {
                p[r * NC + j] += dot(av, bq[j]);
              }
            }
          }
          // @unroll
          for (var r = 0u; r < MR; r++) {
            let sar = scale_a(ar[r], s);
            // @unroll
            for (var j = 0u; j < NC; j++) {
              acc[r * NC + j] = select(acc[r * NC + j], fma(p[r * NC + j], sar * sbv[j], acc[r * NC + j]), chw < c_hi);
            }
          }
        }
      } else {
        // @unroll
        for (var v = 0u; v < VEC; v++) {
          let ch = c0 + v * KL + kl;
          if (ch < c_hi) {
            let s = ch / 32u;
            var bv: array<vec4<f32>, NC>;
            var sbv: array<f32, NC>;
            // @unroll
            for (var j = 0u; j < NC; j++) {
              bv[j] = load_b4(g * params.n + bcol[j], ch * 4u);
              sbv[j] = scale_b(g, bcol[j], s);
            }
            // @unroll
            for (var r = 0u; r < MR; r++) {
              var av: vec4<f32>;
              var sar: f32;
              if (STAGE_A) {
                av = a_tile[(r * STEP + v * KL + kl) % A_TILE];
                sar = sa_tile[(r * SLICES + (v * KL + kl) / 32u) % SA_TILE];
              } else {
                av = load_a4(ar[r], ch * 4u);
                sar = scale_a(ar[r], s);
              }
              // @unroll
              for (var j = 0u; j < NC; j++) {
                acc[r * NC + j] = fma(dot(av, bv[j]), sar * sbv[j], acc[r * NC + j]);
              }
            }
          }
        }
      }
    }
    // Sum the KL lanes of each column: a tree over workgroup memory, one row at a time.
    // @unroll
    for (var r = 0u; r < MR; r++) {
      workgroupBarrier();
      // @unroll
      for (var j = 0u; j < NC; j++) {
        red[j * WG + lid] = acc[r * NC + j];
      }
      for (var h = KL / 2u; h > 0u; h = h >> 1u) {
        workgroupBarrier();
        if (kl < h) {
          // @unroll
          for (var j = 0u; j < NC; j++) {
            red[j * WG + lid] += red[j * WG + lid + h];
          }
        }
      }
      workgroupBarrier();
      if (kl == 0u) {
        // @unroll
        for (var j = 0u; j < NC; j++) {
          res[r * COLS + cg * NC + j] = red[j * WG + lid];
        }
      }
    }
    workgroupBarrier();
    let half = COLS / 2u;
    for (var p = lid; p < MR * half; p += WG) {
      let r = p / half;
      let q = p % half;
      let col = col_blk + 2u * q;
      if (r0 + r < rows && col < params.n) {
        let v = vec2<f32>(res[r * COLS + 2u * q], res[r * COLS + 2u * q + 1u]);
        store_pair(params.out_row0 * wid.y + r_base + r0 + r, col, v, false);
      }
    }
  }
}
