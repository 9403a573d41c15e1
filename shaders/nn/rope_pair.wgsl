// Rope of one head's D = 2 * half rotated dims (table [positions, half, 2] of cos/sin, bound as
// `table: array<f32>`): pair p is dims (2p, 2p+1) when INTERLEAVE (DeepSeek's checkpoints), else (p, p + half).

// cos/sin of pair p at position pos; NaN past the table, so an undersized table cannot pass silently.
fn rope_cs(pos: u32, p: u32, half: u32, max_pos: u32) -> vec2<f32> {
  // A var, not a constant: WGSL refuses NaN in constant expressions.
  var nan_bits = 0x7fc00000u;
  let k = 2u * (min(pos, max_pos - 1u) * half + p);
  return select(vec2<f32>(bitcast<f32>(nan_bits)), vec2<f32>(table[k], table[k + 1u]), pos < max_pos);
}

// The dims of pair p.
fn rope_pair(p: u32, half: u32) -> vec2<u32> {
  return select(vec2<u32>(p, p + half), vec2<u32>(2u * p, 2u * p + 1u), INTERLEAVE);
}

// The pair of dim j.
fn rope_pair_of(j: u32, half: u32) -> u32 {
  return select(j % half, j / 2u, INTERLEAVE);
}

// Pair (a, b) rotated: (a cos - b sin, b cos + a sin).
fn rope_rotate(ab: vec2<f32>, cs: vec2<f32>) -> vec2<f32> {
  return vec2<f32>(ab.x * cs.x - ab.y * cs.y, ab.y * cs.x + ab.x * cs.y);
}
