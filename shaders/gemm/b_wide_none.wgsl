// Without WIDE the kernel never calls this; it exists so that the kernel compiles without a b4 binding.
fn load_b16(row: u32, ch: u32) -> vec4<u32> {
  return vec4<u32>(0u);
}
