// MLA's absorbed query: W_UK folded into q. For token t and head h,
//   out[t, h, c]       = sum_j q[t, h, j] * kv_b[h * (DN + DV) + j, c]   (c < KVR: the latent part)
//   out[t, h, KVR + i] = q[t, h, DN + i]                                  (the roped part, copied)
// so out . [latent kv, roped k] equals q_nope . k_nope + q_rope . k_rope. kv_b is read as stored.
// A workgroup takes COLS consecutive output columns of one (token, head); its JG lane groups split
// the DN rows (neighbouring lanes read neighbouring columns of one kv_b row) and their partial sums
// are added in a fixed order.
// Holes: WG (= COLS * JG), COLS, JG, DN, DV, DR, KVR, W_KIND (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> wscale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let d = KVR + DR;
  let blocks = (d + COLS - 1u) / COLS;
  let g = wid.x + wid.y * params.grid_x;
  let th = min(g / blocks, params.rows - 1u);
  let c = (g % blocks) * COLS + lid % COLS;
  let jg = lid / COLS;
  let h = th % params.heads;
  let qrow = th * (DN + DR);
  var acc = 0.0;
  if (c < KVR) {
    for (var j = jg; j < DN; j = j + JG) {
      acc = acc + q[qrow + j] * weight_at(h * (DN + DV) + j, c);
    }
  }
  part[lid] = acc;
  workgroupBarrier();
  if (jg != 0u || c >= d || g >= params.rows * blocks) { return; }
  if (c >= KVR) {
    out[th * d + c] = q[qrow + DN + c - KVR];
    return;
  }
  var sum = part[lid];
  for (var k = 1u; k < JG; k = k + 1u) { sum = sum + part[k * COLS + lid]; }
  out[th * d + c] = sum;
}
