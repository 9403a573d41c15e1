// B as 16-byte words (e4m3, k % 16 == 0): the 4 words from chunk `ch` (a multiple of 4) of a row.
// A second read-only view of the same buffer as `b`.
@group(0) @binding(8) var<storage, read> b4: array<vec4<u32>>;

fn load_b16(row: u32, ch: u32) -> vec4<u32> {
  return b4[(row * params.b_pitch_words + ch) / 4u];
}
