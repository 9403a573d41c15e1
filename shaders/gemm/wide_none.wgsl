// Without WIDE the kernel never calls these; they exist so that it compiles without the a4/b4 bindings.
fn load_b16(row: u32, ch: u32) -> vec4<u32> {
  return vec4<u32>(0u);
}

fn load_a_chunk(row: u32, ch: u32) -> vec4<f32> {
  return vec4<f32>(0.0);
}
