// f32 -> bf16 / f16 bits, round to nearest even with integer arithmetic (as src/formats/half.ts and
// torch's casts): overflow gives inf, NaN stays NaN, f16 subnormals are kept.

fn bf16_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0x7fc0u; }
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

fn f16_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let sign = (b >> 16u) & 0x8000u;
  let a = b & 0x7fffffffu;
  if (a > 0x7f800000u) { return sign | 0x7e00u; }
  if (a >= 0x477ff000u) { return sign | 0x7c00u; }   // rounds to >= 65520: inf
  let e = a >> 23u;
  if (e < 113u) {                                     // f16 subnormal, quantum 2^-24
    if (e < 101u) { return sign; }
    let m = (a & 0x7fffffu) | 0x800000u;
    let s = 126u - e;
    let q = m >> s;
    let rem = m & ((1u << s) - 1u);
    let half = 1u << (s - 1u);
    return sign | (q + select(0u, 1u, rem > half || (rem == half && (q & 1u) == 1u)));
  }
  return sign | ((a - (112u << 23u) + 0xfffu + ((a >> 13u) & 1u)) >> 13u);
}
