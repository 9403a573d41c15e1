// siluMul: out [rows, inter] = silu(gate) * up = gate / (1 + exp(-gate)) * up, f32. Element (r, c)
// reads gate[r * ld + c] and up[r * ld + up_off + c]: separate gate and up tensors, or one
// fused gate/up GEMM output [rows, 2 * inter] (gate columns, then up) bound as both.
// Holes: WG (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (i >= params.rows * params.inter) { return; }
  let r = i / params.inter;
  let c = i % params.inter;
  let g = gate[r * params.ld + c];
  out[i] = g / (1.0 + exp(-g)) * up[r * params.ld + params.up_off + c];
}
