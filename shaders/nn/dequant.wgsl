// dequant: a weight as stored (f32, bf16, f16, or e4m3 with 128x128 block scales) -> f32 [rows, cols].
// Holes: WG, W_KIND (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wscale: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (i >= params.rows * params.cols) { return; }
  out[i] = weight_at(i / params.cols, i % params.cols);
}
