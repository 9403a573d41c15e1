// combine: out[t, c] = sum over slots j of weights[t, j] * y[src_to_dst[t, j], c], in slot order,
// one invocation per output element: no atomics, the same bits every run. y is f32 or bf16
// (load_x), out f32. Slots routed nowhere (-1) add nothing. With RESIDUAL the sum starts from
// residual[t, c] (a model's residual stream: no add pass after the layer).
// Holes: WG, K, IN_BF16, RESIDUAL (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> src_to_dst: array<i32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (i >= params.tokens * params.hidden) { return; }
  let t = i / params.hidden;
  let c = i % params.hidden;
  var acc = 0.0;
  if (RESIDUAL) { acc = residual[i]; }
  // Unrolled and branch-free, so that every load is issued at once.
  // @unroll
  for (var j = 0u; j < K; j++) {
    let r = src_to_dst[t * K + j];
    let v = weights[t * K + j] * load_x(u32(max(r, 0)) * params.pitch_y + c);
    acc = select(acc, acc + v, r >= 0);
  }
  out[i] = acc;
}
