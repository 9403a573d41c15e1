// bf16/f16/f32 B carries no scales.
fn scale_b(g: u32, col: u32, s: u32) -> f32 {
  return 1.0;
}
