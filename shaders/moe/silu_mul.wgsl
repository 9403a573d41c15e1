// SiLU(gate) * up for an expert MLP: h [rows, 2 * I] f32 (gate columns, then up columns, as the
// fused gate/up GEMM writes them) -> a [rows, I] f32, one invocation per output element.
// Holes: WG (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (i >= params.rows * params.inter) { return; }
  let r = i / params.inter;
  let c = i % params.inter;
  let g = h[r * 2u * params.inter + c];
  a[i] = g / (1.0 + exp(-g)) * h[r * 2u * params.inter + params.inter + c];
}
