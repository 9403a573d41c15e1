// 16-byte loads for the small-m kernel (WIDE: e4m3 B, k % 16 == 0, A and B rows 16-byte aligned):
// second read-only views of the A and B buffers as vec4<u32>. `ch` is a chunk index (4 k values), a multiple of 4.
@group(0) @binding(8) var<storage, read> b4: array<vec4<u32>>;
@group(0) @binding(9) var<storage, read> a4: array<vec4<u32>>;

// 16 e4m3 values of row `row` of B.
fn load_b16(row: u32, ch: u32) -> vec4<u32> {
  return b4[(row * params.b_pitch_words + ch) / 4u];
}

// 16 consecutive k values of row `row` of A, decoded (e4m3 in the order B's decode uses).
fn load_a16(row: u32, ch: u32) -> array<vec4<f32>, 4> {
  let i = (row * params.a_pitch_words + ch * A_WORDS) / 4u;
  if (A_WORDS == 1u) { return e4m3x16_paired(a4[i]); }
  if (A_WORDS == 2u) {
    let w0 = a4[i];
    let w1 = a4[i + 1u];
    return array<vec4<f32>, 4>(decode4(A_KIND, w0.xyxy), decode4(A_KIND, w0.zwzw), decode4(A_KIND, w1.xyxy), decode4(A_KIND, w1.zwzw));
  }
  return array<vec4<f32>, 4>(bitcast<vec4<f32>>(a4[i]), bitcast<vec4<f32>>(a4[i + 1u]), bitcast<vec4<f32>>(a4[i + 2u]), bitcast<vec4<f32>>(a4[i + 3u]));
}
