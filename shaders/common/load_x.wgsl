// Element i (flat, pitch included) of an f32 or bf16 input held as u32 words.
fn load_x(i: u32) -> f32 {
  if (IN_BF16) {
    let w = x[i >> 1u];
    return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));
  }
  return bitcast<f32>(x[i]);
}
