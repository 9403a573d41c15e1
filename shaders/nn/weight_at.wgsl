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
