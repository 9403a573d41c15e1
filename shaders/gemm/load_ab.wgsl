// 4 consecutive k values (k0 % 4 == 0) of a row of A or B, decoded to f32, zero past k.
// A_WORDS / B_WORDS (consts): words holding 4 values, 1 for e4m3, 2 for bf16/f16, 4 for f32.

fn load_a4(row: u32, k0: u32) -> vec4<f32> {
  let i = row * params.a_pitch_words + k0 * A_WORDS / 4u;
  var w: vec4<u32>;
  if (A_WORDS == 1u) { w = vec4<u32>(a[i]); }
  else if (A_WORDS == 2u) { w = vec4<u32>(a[i], a[i + 1u], 0u, 0u); }
  else { w = vec4<u32>(a[i], a[i + 1u], a[i + 2u], a[i + 3u]); }
  return mask_k(decode4(A_KIND, w), k0, params.k, A_KIND);
}

fn load_b4(row: u32, k0: u32) -> vec4<f32> {
  let i = row * params.b_pitch_words + k0 * B_WORDS / 4u;
  var w: vec4<u32>;
  if (B_WORDS == 1u) { w = vec4<u32>(b[i]); }
  else if (B_WORDS == 2u) { w = vec4<u32>(b[i], b[i + 1u], 0u, 0u); }
  else { w = vec4<u32>(b[i], b[i + 1u], b[i + 2u], b[i + 3u]); }
  return mask_k(decode4(B_KIND, w), k0, params.k, B_KIND);
}
