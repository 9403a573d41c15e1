// e4m3fn <-> f32 with integer arithmetic only, bit-identical to PyTorch's casts (src/formats/fp8.ts
// is the same algorithm). Integer rounding avoids GPU float modes (flush-to-zero, rounding).

// |x| as e4m3fn bits (no sign); callers OR the sign in.
fn e4m3_encode_abs(a: u32) -> u32 {
  if (a >= 0x43f00000u) { return 0x7fu; }           // >= 480, inf, NaN: NaN, as torch
  let e = a >> 23u;
  if (e < 121u) {                                     // below 2^-6: subnormal, quantum 2^-9
    let s = 141u - e;
    if (e == 0u || s > 25u) { return 0u; }
    let m = (a & 0x7fffffu) | 0x800000u;
    let q = m >> s;
    let rem = m & ((1u << s) - 1u);
    let half = 1u << (s - 1u);
    return q + select(0u, 1u, rem > half || (rem == half && (q & 1u) == 1u));
  }
  // Rebias the exponent (127 -> 7) and round the mantissa to nearest even in one add.
  let r = a + 0xc407ffffu + ((a >> 20u) & 1u);
  return (r >> 20u) & 0x7fu;
}

// f32 bits -> e4m3fn bits.
fn e4m3_encode(b: u32) -> u32 {
  return ((b >> 24u) & 0x80u) | e4m3_encode_abs(b & 0x7fffffffu);
}

fn e4m3_decode(v: u32) -> f32 {
  let e = (v >> 3u) & 0xfu;
  let m = v & 7u;
  var mag: f32;
  if (e == 0u) {
    mag = f32(m) * 0.001953125;                       // m * 2^-9, a normal f32: survives flush-to-zero
  } else if (e == 15u && m == 7u) {
    mag = bitcast<f32>(0x7fc00000u + (m - 7u));       // NaN; built from m (= 7) since WGSL has no NaN constant
  } else {
    mag = bitcast<f32>(((e + 120u) << 23u) | (m << 20u));
  }
  return select(mag, -mag, (v & 0x80u) != 0u);
}
