// Output stores. Two adjacent columns (col even) are written by one invocation, so bf16/f16
// outputs, packed two per word, never see two writers of a word. OUT_KIND: 0 f32, 1 bf16, 2 f16.
// `load_c` comes from c_load.wgsl or c_none.wgsl.

fn pack_out(x: f32) -> u32 {
  if (OUT_KIND == 1u) { return bf16_bits(x); }
  return f16_bits(x);
}

// Row `r` of the output (pitch included), columns col and col+1 (when col+1 < n); `zero` stores 0.
fn store_pair(r: u32, col: u32, v: vec2<f32>, zero: bool) {
  let i = r * params.out_pitch + col;
  let has1 = col + 1u < params.n;
  var x = v + vec2<f32>(load_c(r, col), select(0.0, load_c(r, col + 1u), has1));
  x = select(x, vec2<f32>(0.0), zero);
  if (OUT_KIND == 0u) {
    out[i] = bitcast<u32>(x.x);
    if (has1) { out[i + 1u] = bitcast<u32>(x.y); }
  } else {
    out[i / 2u] = pack_out(x.x) | (select(0u, pack_out(x.y), has1) << 16u);
  }
}
