// load_x4 over an f32 input bound as vec4<u32> words: elements i .. i+3 (flat, pitch included; i a
// multiple of 4, rows a whole number of vec4s) in one 16-byte load, those from the n-th on as 0.
fn load_x4(i: u32, n: u32) -> vec4<f32> {
  let v = bitcast<vec4<f32>>(x[min(i / 4u, arrayLength(&x) - 1u)]);
  return select(vec4<f32>(0.0), v, vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n));
}
