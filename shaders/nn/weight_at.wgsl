// Element (row, col) of a weight matrix as stored in a checkpoint: W_KIND 0 f32, 1 bf16, 2 f16 or
// 3 e4m3 times its 128x128 block scale (wscale [ceil(rows/128), w_kb]). w is u32 words, rows
// padded to w_pitch elements. Needs e4m3_decode (common/fp8.wgsl) and params.w_pitch, params.w_kb.
fn weight_at(row: u32, col: u32) -> f32 {
  let i = row * params.w_pitch + col;
  if (W_KIND == 3u) {
    return e4m3_decode((w[i >> 2u] >> (8u * (i & 3u))) & 0xffu) * wscale[(row / 128u) * params.w_kb + col / 128u];
  }
  if (W_KIND == 1u) { return bitcast<f32>(((w[i >> 1u] >> (16u * (i & 1u))) & 0xffffu) << 16u); }
  if (W_KIND == 2u) { return unpack2x16float(w[i >> 1u])[i & 1u]; }
  return bitcast<f32>(w[i]);
}

// Columns col .. col + 3 of a row at once (col a multiple of 4; columns at or past `cols` read 0):
// one word of e4m3 (the four share a 128-column scale block), two of bf16/f16, four of f32.
fn weight4_at(row: u32, col: u32, cols: u32) -> vec4<f32> {
  let i = row * params.w_pitch + col;
  var v: vec4<f32>;
  if (W_KIND == 3u) {
    v = e4m3x4_decode(w[i >> 2u]) * wscale[(row / 128u) * params.w_kb + col / 128u];
  } else if (W_KIND == 1u) {
    let a = w[i >> 1u];
    let b = w[(i >> 1u) + 1u];
    v = bitcast<vec4<f32>>(vec4<u32>(a << 16u, a & 0xffff0000u, b << 16u, b & 0xffff0000u));
  } else if (W_KIND == 2u) {
    v = vec4<f32>(unpack2x16float(w[i >> 1u]), unpack2x16float(w[(i >> 1u) + 1u]));
  } else {
    v = bitcast<vec4<f32>>(vec4<u32>(w[i], w[i + 1u], w[i + 2u], w[i + 3u]));
  }
  return select(vec4<f32>(0.0), v, vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(cols));
}
