// MLA's output projection to values, W_UV applied after attention over the latent cache:
//   out[t, h, v] = sum_c o[t, h, c] * kv_b[h * (DN + DV) + DN + v, c]     (o: attention output [.., KVR])
// A workgroup computes R consecutive outputs of one (token, head): lane l takes channels l, l + WG,
// ... of all R rows (neighbouring lanes read neighbouring bytes of a kv_b row), then one fixed
// reduction tree over the lanes serves all R sums. kv_b is read as stored.
// Holes: WG, R, DN, DV, KVR, W_KIND (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> wscale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> part: array<f32, R * WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let blocks = (DV + R - 1u) / R;
  let g = wid.x + wid.y * params.grid_x;
  let th = min(g / blocks, params.rows - 1u);
  let v0 = (g % blocks) * R;
  let base = (th % params.heads) * (DN + DV) + DN;
  var acc: array<f32, R>;
  for (var r = 0u; r < R; r = r + 1u) { acc[r] = 0.0; }
  for (var c = lid; c < KVR; c = c + WG) {
    let x = o[th * KVR + c];
    for (var r = 0u; r < R; r = r + 1u) { acc[r] = acc[r] + x * weight_at(base + min(v0 + r, DV - 1u), c); }
  }
  for (var r = 0u; r < R; r = r + 1u) { part[r * WG + lid] = acc[r]; }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      for (var r = 0u; r < R; r = r + 1u) { part[r * WG + lid] = part[r * WG + lid] + part[r * WG + lid + s]; }
    }
    workgroupBarrier();
  }
  if (lid < R && v0 + lid < DV && g < params.rows * blocks) { out[th * DV + v0 + lid] = part[lid * WG]; }
}
