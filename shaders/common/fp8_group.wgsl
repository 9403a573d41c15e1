// DeepGEMM's FP8 group quantisation (src/formats/casts.ts): amax clamped to >= 1e-4,
// scale = amax / 448, q = e4m3(x * (448 / amax)), both divisions correctly rounded.

// The group's factor 448 / amax; the dequantisation scale is fp8_group_scale(amax).
fn fp8_group_factor(amax: f32) -> f32 {
  return div_rn(448.0f, max(amax, 1e-4f));
}

fn fp8_group_scale(amax: f32) -> f32 {
  return div_rn(max(amax, 1e-4f), 448.0f);
}

// The first n (<= 4) of vals as e4m3 bytes, packed little-endian into a word.
fn fp8_pack4(vals: vec4<f32>, n: u32, factor: f32) -> u32 {
  var word = 0u;
  for (var j = 0u; j < min(n, 4u); j = j + 1u) {
    // Sign from x itself: a product flushed to zero keeps torch's signed zero.
    let sign = (bitcast<u32>(vals[j]) >> 24u) & 0x80u;
    word = word | ((sign | e4m3_encode_abs(bitcast<u32>(abs(vals[j]) * factor))) << (8u * j));
  }
  return word;
}
