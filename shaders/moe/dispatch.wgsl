// dispatch: token rows of x [tokens, hidden] (f32 or bf16) -> the dispatched rows of the layout,
// copied as they are or cast to FP8 (e4m3 + 1x128 scales, bit-identical to perTokenCastToFp8).
// One workgroup per work item: contiguous layout, every row r in use (source token dst_to_src[r],
// zeros for padding rows, which the grouped GEMM reads too; rows past the last group, starts[E],
// stay unwritten); masked layout, every entry i (token i / K, row src_to_dst[i]); rows past an
// expert's count stay unwritten. FP8: as the per-token cast, a segment of 32 invocations owns one
// 1x128 group, 4 columns per invocation, and the workgroup walks the row WG / 32 groups at a time.
// Holes: WG, SEG (= 32), SG_MIN, IN_BF16, K, CONTIGUOUS, FP8, EPW (input elements per word) (prelude),
// Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> src_to_dst: array<i32>;
@group(0) @binding(3) var<storage, read> dst_to_src: array<i32>;
@group(0) @binding(4) var<storage, read_write> q: array<u32>;
@group(0) @binding(5) var<storage, read_write> scales: array<f32>;
@group(0) @binding(6) var<storage, read> starts: array<i32>;

var<workgroup> wg_src: i32;
var<workgroup> wg_dst: i32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) {
    let item = wid.x + wid.y * params.grid_x;
    var src = -1;
    var dst = -1;
    if (CONTIGUOUS) {
      if (item < min(params.items, u32(starts[params.experts]))) {
        dst = i32(item);
        src = dst_to_src[item];
      }
    } else if (item < params.items) {
      dst = src_to_dst[item];
      src = i32(item / K);
    }
    wg_src = src;
    wg_dst = dst;
  }
  // Uniform: the whole workgroup leaves together, before any barrier.
  let dst_i = workgroupUniformLoad(&wg_dst);
  if (dst_i < 0) { return; }
  let dst = u32(dst_i);
  let src = wg_src;

  if (!FP8) {
    // A word-by-word copy (a row's padding words included: they are part of the layout).
    let words = params.pitch_x / EPW;
    for (var w = lid; w < words; w = w + WG) {
      var v = 0u;
      if (src >= 0) { v = x[u32(src) * words + w]; }
      q[dst * words + w] = v;
    }
    return;
  }

  let lane = lid % SEG;
  for (var g0 = 0u; g0 < params.groups; g0 = g0 + WG / SEG) {
    let g = g0 + lid / SEG;
    let col0 = g * 128u + lane * 4u;
    let live = src >= 0 && g < params.groups && col0 < params.k;
    let vals = load_x4(u32(max(src, 0)) * params.pitch_x + col0, select(0u, params.k - col0, live));
    // All invocations reach the reduction (it has barriers); idle ones contribute 0.
    let group_amax = segment_max(max(max(abs(vals.x), abs(vals.y)), max(abs(vals.z), abs(vals.w))), lid);
    if (g < params.groups && col0 < params.k) {
      if (lane == 0u) { scales[dst * params.groups + g] = fp8_group_scale(group_amax); }
      q[dst * params.pitch_q_words + col0 / 4u] = fp8_pack4(vals, params.k - col0, fp8_group_factor(group_amax));
    }
  }
}
