// The unfused MLA baseline's softmax (bench --mla): one workgroup per query row of one sequence,
// scores S [rows, padded positions] f32 from the QK^T GEMM turned in place into probabilities
// P = exp(scale s - max) / sum over the sequence's positions (0 over its padding), and lse.
// Holes: WG, Params; wg_max / wg_sum from common/wg_reduce.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> s: array<f32>;
@group(0) @binding(2) var<storage, read> seqs: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x;
  let b = r / params.m;
  let row = r % params.m;
  // seqs[b] = (first position, padded length, length).
  let sq = seqs[b];
  let base = params.m * sq.x + row * sq.y;
  var mx = -3.0e38;
  for (var j = lid; j < sq.z; j += WG) { mx = max(mx, params.scale * s[base + j]); }
  mx = wg_max(mx, lid);
  var sum = 0.0;
  for (var j = lid; j < sq.z; j += WG) { sum += exp(params.scale * s[base + j] - mx); }
  sum = wg_sum(sum, lid);
  for (var j = lid; j < sq.y; j += WG) { s[base + j] = select(0.0, exp(params.scale * s[base + j] - mx) / sum, j < sq.z); }
  if (lid == 0u) {
    let t = row / params.h_q;
    lse[(b * params.h_q + row % params.h_q) * params.s_q + t] = mx + log(sum);
  }
}
