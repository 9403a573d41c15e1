// GEMM operands as u32 words: kinds 0 f32, 1 bf16, 2 f16, 3 e4m3. Kernels fetch the words that hold
// 4 consecutive k values (1 word for e4m3, 2 for 16-bit, 4 for f32) and decode them here.
//
// e4m3 takes a cheap route: each byte's bits, moved into an f16 (sign to bit 15, the 7 magnitude
// bits to bits 7..13), are the same number times 2^-8, subnormals included (they land on f16
// subnormals); two bytes convert per unpack2x16float. The 2^-8 of each operand is given back
// through the scales (scale_a.wgsl and scale_b.wgsl multiply each by 256). Values come out in the order
// (b0, b2, b1, b3): when A and B are both e4m3 they share that order, so dot products and sums over
// k are unchanged (E4M3_PAIRED); an e4m3 operand beside a 16/32-bit one is put back in k order.

// Exact decode for words holding a NaN code (0x7f or 0xff), which the f16 route would misread.
fn e4m3x4_nan_path(w: u32) -> vec4<f32> {
  let d = e4m3x4_decode(w) * 0.00390625;
  return vec4<f32>(d.x, d.z, d.y, d.w);
}

// True when any byte of any word is a NaN code (0x7f or 0xff): adding 1 to a byte's low 7 bits
// reaches bit 7 only from 0x7f, and never carries into the next byte.
fn e4m3_has_nan(w: vec4<u32>) -> bool {
  let t = (w & vec4<u32>(0x7f7f7f7fu)) + vec4<u32>(0x01010101u);
  return ((t.x | t.y | t.z | t.w) & 0x80808080u) != 0u;
}

// The f16 route without the NaN check. Each 16-bit half of x holds a byte shifted left by 7: its
// magnitude lands on bits 7..13 and its sign on bit 14; adding bit 14 to itself carries it to 15.
fn e4m3x4_fast(w: u32) -> vec4<f32> {
  let x = (w & 0x00ff00ffu) << 7u;
  let y = (w >> 1u) & 0x7f807f80u;
  return vec4<f32>(unpack2x16float(x + (x & 0x40004000u)), unpack2x16float(y + (y & 0x40004000u)));
}

fn e4m3x4_scaled(w: u32) -> vec4<f32> {
  if (e4m3_has_nan(vec4<u32>(w))) { return e4m3x4_nan_path(w); }
  return e4m3x4_fast(w);
}

// One e4m3 word in the order the other operand uses (see above).
fn e4m3x4_paired(w: u32) -> vec4<f32> {
  let v = e4m3x4_scaled(w);
  if (E4M3_PAIRED) { return v; }
  return v.xzyw;
}

// One e4m3 word in the order the other operand uses, `nan` saying whether its 16-byte load held a
// NaN code (e4m3_has_nan, checked once for four words).
fn e4m3x4_checked(w: u32, nan: bool) -> vec4<f32> {
  if (nan) { return e4m3x4_paired(w); }
  let v = e4m3x4_fast(w);
  if (E4M3_PAIRED) { return v; }
  return v.xzyw;
}

fn decode4(kind: u32, w: vec4<u32>) -> vec4<f32> {
  if (kind == 3u) { return e4m3x4_paired(w.x); }
  if (kind == 1u) {
    return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u));
  }
  if (kind == 2u) { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
  return bitcast<vec4<f32>>(w);
}

// Values at k >= k_len are zero: row padding and the next row's words never leak in. `kind` gives
// the order decode4 returned the values in.
fn mask_k(v: vec4<f32>, k0: u32, k_len: u32, kind: u32) -> vec4<f32> {
  let offs = select(vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(0u, 2u, 1u, 3u), kind == 3u && E4M3_PAIRED);
  return select(vec4<f32>(0.0), v, vec4<u32>(k0) + offs < vec4<u32>(k_len));
}
