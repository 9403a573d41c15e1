// MLA's absorbed query: W_UK folded into q. For token t and head h,
//   out[t, h, c]       = sum_j q[t, h, j] * kv_b[h * (DN + DV) + j, c]   (c < KVR: the latent part)
//   out[t, h, KVR + i] = q[t, h, DN + i], rotated by the token's position when ROPE (rope_pair.wgsl)
// so out . [latent kv, roped k] equals q_nope . k_nope + q_rope . k_rope. kv_b is read as stored.
// q rows are q_pitch apart (q may be the first columns of a fused projection's output).
// A workgroup takes CQ column quads of one (token, head): invocation (jg, cq) sums the JN rows
// jg, jg + JG, ... for columns 4 cq .. 4 cq + 3 (one word of an FP8 row; its loads are issued
// together: at decode sizes the kernel is latency, not bytes), then the JG partial sums are added
// in a fixed order. Each (token, head)'s first workgroup also writes the rope part.
// Holes: WG (= CQ * JG), CQ, JG, JN (= DN / JG), DN, DV, DR, KVR, W_KIND, ROPE, INTERLEAVE
// (prelude), Params (typegpu struct), weight and rope helpers.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> wscale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> positions: array<i32>;
@group(0) @binding(6) var<storage, read> table: array<f32>;

var<workgroup> part: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let d = KVR + DR;
  let blocks = (KVR + 4u * CQ - 1u) / (4u * CQ);
  let g = wid.x + wid.y * params.grid_x;
  let th = min(g / blocks, params.rows - 1u);
  let blk = g % blocks;
  let t = th / params.heads;
  let h = th % params.heads;
  let cq = lid % CQ;
  let jg = lid / CQ;
  let c = (blk * CQ + cq) * 4u;
  let qrow = t * params.q_pitch + h * (DN + DR);
  var acc = vec4<f32>(0.0);
  // @unroll
  for (var i = 0u; i < JN; i++) {
    let j = jg + i * JG;
    acc = fma(vec4<f32>(q[qrow + j]), weight4_at(h * (DN + DV) + j, c, KVR), acc);
  }
  part[lid] = acc;
  workgroupBarrier();
  if (g >= params.rows * blocks) { return; }
  if (blk == 0u) {
    let half = DR / 2u;
    for (var i = lid; i < DR; i = i + WG) {
      var v = q[qrow + DN + i];
      if (ROPE) {
        let p = rope_pair_of(i, half);
        let ab = qrow + DN + rope_pair(p, half);
        let r = rope_rotate(vec2<f32>(q[ab.x], q[ab.y]), rope_cs(u32(positions[t]), p, half, params.max_pos));
        v = select(r.x, r.y, i == rope_pair(p, half).y);
      }
      out[th * d + KVR + i] = v;
    }
  }
  if (jg != 0u) { return; }
  var sum = part[cq];
  for (var k = 1u; k < JG; k = k + 1u) { sum = sum + part[k * CQ + cq]; }
  for (var k = 0u; k < 4u; k = k + 1u) {
    if (c + k < KVR) { out[th * d + c + k] = sum[k]; }
  }
}
