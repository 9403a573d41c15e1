// bf16/f16/f32 operands carry no scales.
fn scale_a(r: u32, s: u32) -> f32 {
  return 1.0;
}

fn scale_b(g: u32, col: u32, s: u32) -> f32 {
  return 1.0;
}
