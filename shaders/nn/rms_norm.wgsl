// rmsNorm: out[r, c] = x[r, c] / sqrt(mean_c(x[r]^2) + eps) * w[c], as transformers' RMSNorm in
// f32. One workgroup per row; x may be a column window of a wider row (x_off, pitch_x), and the
// result may replace that window (rms_store_inplace.wgsl: the compressed kv inside kv_a_proj's
// output is normalised where it lies) or go to a dense out (rms_store_out.wgsl). Invocation l
// holds columns l, l + WG, ... (PER of them, loaded at once: a decode step's rows are single
// tokens, where latency is all there is), so the row is read once, and in place is safe.
// Holes: WG, PER (prelude), Params (typegpu struct), store_out (helper).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.grid_x;
  let base = min(row, params.rows - 1u) * params.pitch_x + params.x_off;
  var v: array<f32, PER>;
  var ss = 0.0;
  // @unroll
  for (var i = 0u; i < PER; i++) {
    let c = lid + i * WG;
    v[i] = select(0.0, x[base + min(c, params.n - 1u)], c < params.n);
    ss = ss + v[i] * v[i];
  }
  let total = wg_sum(ss, lid);
  if (row >= params.rows) { return; }
  let r = inverseSqrt(total / f32(params.n) + params.eps);
  // @unroll
  for (var i = 0u; i < PER; i++) {
    let c = lid + i * WG;
    if (c < params.n) { store_out(row, c, v[i] * r * w[c]); }
  }
}
