// perTokenCastToFp8: x [m, k] (f32 or bf16) -> q [m, k] e4m3 (rows padded to words) and
// scales [m, ceil(k/128)] f32. Each segment of SEG invocations owns one 1x128 group; invocation
// `lane` converts WPL = 32 / SEG of its words, 4 elements each: word wi starts at column
// g * 128 + lane * LANE_STRIDE + wi * WORD_STRIDE. Interleaved (LANE_STRIDE 4, WORD_STRIDE 4 * SEG):
// neighbouring lanes touch neighbouring words; contiguous (LANE_STRIDE 16, WORD_STRIDE 4, WPL 4): a
// lane's words are one 16-byte q store. Several words per lane share the group's two correctly
// rounded divisions (fp8_group.wgsl), which cost more than the conversions of one word.
// Holes: WG, SEG, WPL, LANE_STRIDE, WORD_STRIDE, SG_MIN, IN_BF16 (prelude), XWord and QWord
// (aliases: u32, or vec4<u32> with load_x4_vec.wgsl / store_q_vec4.wgsl), load_x4, store_q, Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<XWord>;
@group(0) @binding(2) var<storage, read_write> q: array<QWord>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let group_id = (wid.x + wid.y * params.grid_x) * (WG / SEG) + lid / SEG;
  let lane = lid % SEG;
  let valid = group_id < params.m * params.groups;
  let row = group_id / params.groups;
  let g = group_id % params.groups;
  let col0 = g * 128u + lane * LANE_STRIDE;

  var vals: array<vec4<f32>, WPL>;
  // @unroll
  for (var wi = 0u; wi < WPL; wi++) {
    let c = col0 + wi * WORD_STRIDE;
    vals[wi] = load_x4(row * params.pitch_x + c, select(0u, params.k - c, valid && c < params.k));
  }
  var amax = 0.0;
  // @unroll
  for (var wi = 0u; wi < WPL; wi++) {
    let a = abs(vals[wi]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  // All invocations reach the reduction (it has barriers); invalid ones contribute 0.
  let group_amax = segment_max(amax, lid);
  if (!valid) { return; }

  if (lane == 0u) {
    scales[row * params.groups + g] = fp8_group_scale(group_amax);
  }
  let factor = fp8_group_factor(group_amax);
  var packed: array<u32, WPL>;
  // @unroll
  for (var wi = 0u; wi < WPL; wi++) {
    let c = col0 + wi * WORD_STRIDE;
    packed[wi] = fp8_pack4(vals[wi], select(0u, params.k - c, c < params.k), factor);
  }
  store_q(row * params.pitch_q_words + col0 / 4u, col0, params.k, packed);
}
