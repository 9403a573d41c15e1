// GEMM operands as u32 words: kinds 0 f32, 1 bf16, 2 f16, 3 e4m3. Kernels fetch the words that hold
// 4 consecutive k values (1 word for e4m3, 2 for 16-bit, 4 for f32) and decode them here.

fn decode4(kind: u32, w: vec4<u32>) -> vec4<f32> {
  if (kind == 3u) { return e4m3x4_decode(w.x); }
  if (kind == 1u) {
    return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u));
  }
  if (kind == 2u) { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
  return bitcast<vec4<f32>>(w);
}

// Values at k >= k_len are zero: row padding and the next row's words never leak in.
fn mask_k(v: vec4<f32>, k0: u32, k_len: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), v, vec4<u32>(k0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(k_len));
}
