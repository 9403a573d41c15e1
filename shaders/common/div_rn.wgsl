// a / b correctly rounded (nearest even) for positive normal f32 whose quotient is normal.
// WGSL's `/` may be 2.5 ulp off; torch's f32 division is exact, and the casts must match it bit for bit.
fn div_rn(a: f32, b: f32) -> f32 {
  let ab = bitcast<u32>(a);
  let bb = bitcast<u32>(b);
  var ma = (ab & 0x7fffffu) | 0x800000u;
  let mb = (bb & 0x7fffffu) | 0x800000u;
  var e = i32(ab >> 23u) - i32(bb >> 23u) + 127;
  if (ma < mb) {
    ma = ma << 1u;
    e = e - 1;
  }
  // ma / mb is in [1, 2): long division gives its 24 significant bits.
  var q = 0u;
  var r = ma;
  for (var i = 0u; i < 24u; i = i + 1u) {
    q = q << 1u;
    if (r >= mb) {
      r = r - mb;
      q = q | 1u;
    }
    r = r << 1u;
  }
  // r is twice the remainder now.
  if (r > mb || (r == mb && (q & 1u) == 1u)) { q = q + 1u; }
  if (q == 0x1000000u) {
    q = 0x800000u;
    e = e + 1;
  }
  return bitcast<f32>((u32(e) << 23u) | (q & 0x7fffffu));
}
