// MLA's output projection to values, W_UV applied after attention over the latent cache:
//   out[t, h, v] = sum_c o[t, h, c] * kv_b[h * (DN + DV) + DN + v, c]     (o: attention output [.., KVR])
// A workgroup computes RPW consecutive outputs of one (token, head), LANES invocations each: lane
// l takes the channel quads l, l + LANES, ... (CQ of them, loads issued together; neighbouring
// lanes read neighbouring words of a kv_b row), then a fixed reduction tree over the lanes.
// kv_b is read as stored.
// Holes: WG (= RPW * LANES), RPW, LANES, CQ, DN, DV, KVR, W_KIND (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> wscale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let blocks = (DV + RPW - 1u) / RPW;
  let g = wid.x + wid.y * params.grid_x;
  let th = min(g / blocks, params.rows - 1u);
  let v = (g % blocks) * RPW + lid / LANES;
  let lane = lid % LANES;
  let row = (th % params.heads) * (DN + DV) + DN + min(v, DV - 1u);
  var acc = 0.0;
  // @unroll
  for (var i = 0u; i < CQ; i++) {
    let c = (lane + i * LANES) * 4u;
    let k = vec4<u32>(c) + vec4<u32>(0u, 1u, 2u, 3u);
    let ov = vec4<f32>(o[th * KVR + min(k.x, KVR - 1u)], o[th * KVR + min(k.y, KVR - 1u)], o[th * KVR + min(k.z, KVR - 1u)], o[th * KVR + min(k.w, KVR - 1u)]);
    acc = acc + dot(select(vec4<f32>(0.0), ov, k < vec4<u32>(KVR)), weight4_at(row, c, KVR));
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s = s >> 1u) {
    if (lane < s) { part[lid] = part[lid] + part[lid + s]; }
    workgroupBarrier();
  }
  if (lane == 0u && v < DV && g < params.rows * blocks) { out[th * DV + v] = part[lid]; }
}
