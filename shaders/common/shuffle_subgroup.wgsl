fn shuffle_xor(v: f32, mask: u32) -> f32 {
  return subgroupShuffleXor(v, mask);
}
