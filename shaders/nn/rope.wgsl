// rope, in place: x [tokens, heads, head_dim] f32; the dims rope_off .. rope_off + D of each head
// are rotated by the angle of the token's position, with cos/sin from a table [positions, D/2, 2]
// (built on the host in float64). Pair i is (2i, 2i+1) when INTERLEAVE (DeepSeek's checkpoints),
// else (i, i + D/2); the result stays in that layout. One invocation per (token, head, pair).
// Holes: WG, INTERLEAVE (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> table: array<vec2<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  let half = params.d / 2u;
  if (i >= params.tokens * params.heads * half) { return; }
  let p = i % half;
  let th = i / half;
  let t = th / params.heads;
  let pos = u32(positions[t]);
  // A position past the table leaves NaN, so an undersized table cannot pass silently.
  // (A var, not a constant: WGSL refuses NaN in constant expressions.)
  var nan_bits = 0x7fc00000u;
  let cs = select(vec2<f32>(bitcast<f32>(nan_bits)), table[min(pos, params.max_pos - 1u) * half + p], pos < params.max_pos);
  let base = t * params.pitch_t + (th % params.heads) * params.head_dim + params.rope_off;
  let ia = base + select(p, 2u * p, INTERLEAVE);
  let ib = base + select(p + half, 2u * p + 1u, INTERLEAVE);
  let a = x[ia];
  let b = x[ib];
  x[ia] = a * cs.x - b * cs.y;
  x[ib] = b * cs.x + a * cs.y;
}
