// A scales: sa [rows, kb] (1x128 per token), f32. An e4m3 A's scale is returned times 256 (A_SCALE):
// operands.wgsl decodes e4m3 values times 2^-8; a 16/32-bit A beside e4m3 B keeps its scale as given.
@group(0) @binding(4) var<storage, read> sa: array<f32>;

fn scale_a(r: u32, s: u32) -> f32 {
  return sa[r * params.kb + s] * A_SCALE;
}
