// 4 consecutive k values (k0 % 4 == 0) of a row of A or B, decoded to f32, zero past k.
// A_WORDS / B_WORDS: words holding 4 values (1 e4m3, 2 bf16/f16, 4 f32); repeated reads of one word are free.

fn load_a4(row: u32, k0: u32) -> vec4<f32> {
  let i = row * params.a_pitch_words + k0 * A_WORDS / 4u;
  let w = vec4<u32>(a[i], a[i + min(1u, A_WORDS - 1u)], a[i + min(2u, A_WORDS - 1u)], a[i + min(3u, A_WORDS - 1u)]);
  return mask_k(decode4(A_KIND, w), k0, params.k);
}

fn load_b4(row: u32, k0: u32) -> vec4<f32> {
  let i = row * params.b_pitch_words + k0 * B_WORDS / 4u;
  let w = vec4<u32>(b[i], b[i + min(1u, B_WORDS - 1u)], b[i + min(2u, B_WORDS - 1u)], b[i + min(3u, B_WORDS - 1u)]);
  return mask_k(decode4(B_KIND, w), k0, params.k);
}
