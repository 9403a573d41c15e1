// dispatch: token rows of x [tokens, hidden] (f32 or bf16) -> the dispatched rows of the layout,
// copied as they are or cast to FP8 (e4m3 + 1x128 scales, bit-identical to perTokenCastToFp8).
// As the per-token cast, a segment of 32 invocations owns one 1x128 group of one row, 4 columns
// per invocation. Work items: contiguous layout, every row r in use (source token dst_to_src[r],
// zeros for padding rows, which the grouped GEMM reads too; rows past the last group, starts[E],
// stay unwritten); masked layout, every entry i (token i / K, row src_to_dst[i]), rows past an
// expert's count stay unwritten.
// Holes: WG, SEG (= 32), SG_MIN, IN_BF16, K, CONTIGUOUS, FP8, EPW (input elements per word) (prelude),
// Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> src_to_dst: array<i32>;
@group(0) @binding(3) var<storage, read> dst_to_src: array<i32>;
@group(0) @binding(4) var<storage, read_write> q: array<u32>;
@group(0) @binding(5) var<storage, read_write> scales: array<f32>;
@group(0) @binding(6) var<storage, read> starts: array<i32>;

var<workgroup> rows_in_use: u32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let group_id = (wid.x + wid.y * params.grid_x) * (WG / SEG) + lid / SEG;
  let lane = lid % SEG;
  let item = group_id / params.groups;
  let g = group_id % params.groups;
  let col0 = g * 128u + lane * 4u;
  // Workgroups wholly past the rows in use leave before the reduction's barriers (a uniform exit).
  if (lid == 0u) { rows_in_use = select(params.items, u32(starts[params.experts]), CONTIGUOUS); }
  let first_item = (wid.x + wid.y * params.grid_x) * (WG / SEG) / params.groups;
  if (first_item >= workgroupUniformLoad(&rows_in_use)) { return; }
  var valid = item < min(params.items, rows_in_use);
  var src = -1;
  var dst = 0u;
  if (valid) {
    if (CONTIGUOUS) {
      src = dst_to_src[item];
      dst = item;
    } else {
      src = i32(item / K);
      valid = src_to_dst[item] >= 0;
      dst = u32(max(src_to_dst[item], 0));
    }
  }

  var vals = vec4<f32>(0.0);
  if (valid && src >= 0) {
    for (var j = 0u; j < min(params.k - min(col0, params.k), 4u); j = j + 1u) {
      vals[j] = load_x(u32(src) * params.pitch_x + col0 + j);
    }
  }
  if (FP8) {
    // All invocations reach the reduction (it has barriers); idle ones contribute 0.
    let group_amax = segment_max(max(max(abs(vals.x), abs(vals.y)), max(abs(vals.z), abs(vals.w))), lid);
    if (!valid || col0 >= params.k) { return; }
    if (lane == 0u) { scales[dst * params.groups + g] = fp8_group_scale(group_amax); }
    q[dst * params.pitch_q_words + col0 / 4u] = fp8_pack4(vals, params.k - col0, fp8_group_factor(group_amax));
  } else {
    if (!valid) { return; }
    // A bit copy, word by word (padding words of a row included: they are part of the layout).
    for (var j = 0u; j < 4u; j = j + EPW) {
      let col = col0 + j;
      if (col < params.k) {
        var w = 0u;
        if (src >= 0) { w = x[(u32(src) * params.pitch_x + col) / EPW]; }
        q[(dst * params.pitch_x + col) / EPW] = w;
      }
    }
  }
}
