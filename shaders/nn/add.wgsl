// addInto: acc += b, elementwise, f32 (the residual adds). acc is read and written by the same
// invocation, so in place is safe.
// Holes: WG (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (i >= params.n) { return; }
  acc[i] = acc[i] + b[i];
}
