// FP8 B scales: sb [groups * nb, kb] (128x128 per block), f32, times 256 (B_SCALE): operands.wgsl
// decodes e4m3 values times 2^-8.
@group(0) @binding(5) var<storage, read> sb: array<f32>;

fn scale_b(g: u32, col: u32, s: u32) -> f32 {
  return sb[(g * params.nb + col / 128u) * params.kb + s] * B_SCALE;
}
