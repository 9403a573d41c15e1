// MLA's output projection to values, W_UV applied after attention over the latent cache:
//   out[t, h, v] = sum_c o[t, h, c] * kv_b[h * (DN + DV) + DN + v, c]     (o: attention output [.., KVR])
// One invocation per output element. kv_b is read as stored.
// Holes: WG, DN, DV, KVR, W_KIND (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> wscale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (i >= params.rows * DV) { return; }
  let th = i / DV;
  let v = i % DV;
  let row = (th % params.heads) * (DN + DV) + DN + v;
  var acc = 0.0;
  for (var c = 0u; c < KVR; c = c + 1u) {
    acc = acc + o[th * KVR + c] * weight_at(row, c);
  }
  out[i] = acc;
}
