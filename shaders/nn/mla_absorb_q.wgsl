// MLA's absorbed query: W_UK folded into q. For token t and head h,
//   out[t, h, c]       = sum_j q[t, h, j] * kv_b[h * (DN + DV) + j, c]   (c < KVR: the latent part)
//   out[t, h, KVR + i] = q[t, h, DN + i]                                  (the roped part, copied)
// so out . [latent kv, roped k] equals q_nope . k_nope + q_rope . k_rope. kv_b is read as stored.
// One invocation per output element; neighbours read neighbouring columns of one kv_b row.
// Holes: WG, DN, DV, DR, KVR, W_KIND (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> wscale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  let d = KVR + DR;
  if (i >= params.rows * d) { return; }
  let th = i / d;
  let c = i % d;
  let h = th % params.heads;
  let qrow = th * (DN + DR);
  if (c >= KVR) {
    out[i] = q[qrow + DN + c - KVR];
    return;
  }
  var acc = 0.0;
  for (var j = 0u; j < DN; j = j + 1u) {
    acc = acc + q[qrow + j] * weight_at(h * (DN + DV) + j, c);
  }
  out[i] = acc;
}
