// No C operand: D = A @ B.T.
fn load_c(r: u32, col: u32) -> f32 {
  return 0.0;
}
