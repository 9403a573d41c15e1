// Without subgroups SG_MIN is 1 and segment_max never shuffles.
fn shuffle_xor(v: f32, mask: u32) -> f32 {
  return v;
}
