// rope, in place: x [tokens, heads, head_dim] f32; the dims rope_off .. rope_off + D of each head
// are rotated by the angle of the token's position, with cos/sin from a table [positions, D/2, 2]
// (built on the host in float64); nn/rope_pair.wgsl pairs the dims. The result stays in that
// layout. One invocation per (token, head, pair).
// Holes: WG, INTERLEAVE (prelude), Params (typegpu struct), rope helpers.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  let half = params.d / 2u;
  if (i >= params.tokens * params.heads * half) { return; }
  let p = i % half;
  let th = i / half;
  let t = th / params.heads;
  let cs = rope_cs(u32(positions[t]), p, half, params.max_pos);
  let ab = params.rope_off + t * params.pitch_t + (th % params.heads) * params.head_dim + rope_pair(p, half);
  let r = rope_rotate(vec2<f32>(x[ab.x], x[ab.y]), cs);
  x[ab.x] = r.x;
  x[ab.y] = r.y;
}
