// 16-byte loads for the small-m kernel (WIDE: e4m3 B, k % 16 == 0, A and B rows 16-byte aligned):
// second read-only views of the A and B buffers as vec4<u32>. `ch` is a chunk index (4 k values), a multiple of 4.
@group(0) @binding(8) var<storage, read> b4: array<vec4<u32>>;
@group(0) @binding(9) var<storage, read> a4: array<vec4<u32>>;

// 16 e4m3 values of row `row` of B.
fn load_b16(row: u32, ch: u32) -> vec4<u32> {
  return b4[(row * params.b_pitch_words + ch) / 4u];
}

// The 4 k values of chunk `ch` of row `row` of A, decoded (e4m3 in the order B's decode uses),
// through the same 16-byte view (a chunk is one word of e4m3, two of bf16/f16, four of f32).
fn load_a_chunk(row: u32, ch: u32) -> vec4<f32> {
  let i = row * params.a_pitch_words + ch * A_WORDS;
  let v = a4[i / 4u];
  if (A_WORDS == 4u) { return bitcast<vec4<f32>>(v); }
  if (A_WORDS == 2u) { return decode4(A_KIND, select(v.xyxy, v.zwzw, (i & 2u) != 0u)); }
  return decode4(A_KIND, vec4<u32>(v[i & 3u]));
}
