// Element i (flat, pitch included) of an f32 or bf16 input held as u32 words.
fn load_x(i: u32) -> f32 {
  if (IN_BF16) {
    let w = x[i >> 1u];
    return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));
  }
  return bitcast<f32>(x[i]);
}

// Elements i .. i+3 (flat, pitch included; i is even for bf16, whose rows are padded to words), those
// from the n-th on as 0. The loads are unconditional (indices clamped into the buffer), so a lane
// issues all of them before it uses any: a load under a branch, used at once, waited for a whole
// memory round trip per element.
fn load_x4(i: u32, n: u32) -> vec4<f32> {
  let last = arrayLength(&x) - 1u;
  var v: vec4<f32>;
  if (IN_BF16) {
    let w0 = x[min(i >> 1u, last)];
    let w1 = x[min((i >> 1u) + 1u, last)];
    v = bitcast<vec4<f32>>(vec4<u32>(w0 << 16u, w0 & 0xffff0000u, w1 << 16u, w1 & 0xffff0000u));
  } else {
    v = bitcast<vec4<f32>>(vec4<u32>(x[min(i, last)], x[min(i + 1u, last)], x[min(i + 2u, last)], x[min(i + 3u, last)]));
  }
  return select(vec4<f32>(0.0), v, vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n));
}
