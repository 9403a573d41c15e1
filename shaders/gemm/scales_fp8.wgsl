// FP8 scales: sa [rows, kb] (1x128 per token), sb [groups * nb, kb] (128x128 per block), f32. An e4m3
// operand's scale is returned times 256 (A_SCALE/B_SCALE): operands.wgsl decodes e4m3 values times 2^-8.
// A 16/32-bit A beside e4m3 B (FP8 weights, unquantised activations) keeps its scale as given.
@group(0) @binding(4) var<storage, read> sa: array<f32>;
@group(0) @binding(5) var<storage, read> sb: array<f32>;

fn scale_a(r: u32, s: u32) -> f32 {
  return sa[r * params.kb + s] * A_SCALE;
}

fn scale_b(g: u32, col: u32, s: u32) -> f32 {
  return sb[(g * params.nb + col / 128u) * params.kb + s] * B_SCALE;
}
