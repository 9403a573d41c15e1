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

// Four e4m3fn bytes of a word (byte i = element i) at once, branch-free: the 7 magnitude bits are
// rebased into an f32 exponent (+120); subnormals (exponent field 0) come from the integer
// mantissa instead, so nothing depends on the GPU keeping f32 denormals. Code 0x7f is NaN.
fn e4m3x4_decode(w: u32) -> vec4<f32> {
  let v = (vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
  let mag = v & vec4<u32>(0x7fu);
  let normal = bitcast<vec4<f32>>((mag << vec4<u32>(20u)) + vec4<u32>(0x3c000000u));
  let sub = vec4<f32>(mag & vec4<u32>(7u)) * 0.001953125;
  var r = select(normal, sub, mag < vec4<u32>(8u));
  r = select(r, bitcast<vec4<f32>>(vec4<u32>(0x7fc00000u) + mag - vec4<u32>(0x7fu)), mag == vec4<u32>(0x7fu));
  return bitcast<vec4<f32>>(bitcast<vec4<u32>>(r) | ((v & vec4<u32>(0x80u)) << vec4<u32>(24u)));
}
