// D = C + A @ B.T: C [rows, n] of kind C_KIND (0 f32, 1 bf16, 2 f16), held as u32 words.
@group(0) @binding(6) var<storage, read> cmat: array<u32>;

fn load_c(r: u32, col: u32) -> f32 {
  let i = r * params.c_pitch + col;
  if (C_KIND == 0u) { return bitcast<f32>(cmat[i]); }
  let w = cmat[i / 2u] >> (16u * (i & 1u));
  if (C_KIND == 1u) { return bitcast<f32>(w << 16u); }
  return unpack2x16float(w & 0xffffu).x;
}
