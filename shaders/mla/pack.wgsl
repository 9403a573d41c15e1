// Pairs of 16-bit floats in u32 words. Kinds: 0 = f32, 1 = bf16, 2 = f16 (q, out); the decode's K tile
// in workgroup memory is bf16 pairs (bf16 and fp8 caches) or f16 pairs (f16 cache).

fn unpack_bf16(w: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}

// f32 -> bf16 bits, round to nearest even (NaN stays NaN), as torch.
fn bf16_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0x7fc0u; }
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

// Four at once, rounded as bf16_bits and kept as f32 (NaN kept as it is).
fn bf16_round4(x: vec4<f32>) -> vec4<f32> {
  let b = bitcast<vec4<u32>>(x);
  let r = (b + vec4<u32>(0x7fffu) + ((b >> vec4<u32>(16u)) & vec4<u32>(1u))) & vec4<u32>(0xffff0000u);
  return bitcast<vec4<f32>>(select(r, b, (b & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u)));
}

fn pack_pair(v: vec2<f32>, kind: u32) -> u32 {
  if (kind == 1u) { return bf16_bits(v.x) | (bf16_bits(v.y) << 16u); }
  return pack2x16float(v);
}

fn unpack_pair(w: u32, kind: u32) -> vec2<f32> {
  if (kind == 1u) { return unpack_bf16(w); }
  return unpack2x16float(w);
}

