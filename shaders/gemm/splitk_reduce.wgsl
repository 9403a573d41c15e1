// Split-k second pass (dense layout): out = C + sum over splits of the f32 partials in ws
// [splits, m, n], one invocation per pair of adjacent columns.
// Holes: WG, OUT_KIND, C_KIND (prelude), Params.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ws: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let half = (params.n + 1u) / 2u;
  let p = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (p >= params.m * half) { return; }
  let r = p / half;
  let col = 2u * (p % half);
  let has1 = col + 1u < params.n;
  var v = vec2<f32>(0.0);
  for (var s = 0u; s < params.splits; s++) {
    let i = (s * params.m + r) * params.n + col;
    v += vec2<f32>(ws[i], select(0.0, ws[i + 1u], has1));
  }
  store_pair(r, col, v, false);
}
