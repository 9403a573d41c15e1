// rmsNorm: out[r, c] = x[r, c] / sqrt(mean_c(x[r]^2) + eps) * w[c], as transformers' RMSNorm in
// f32. One workgroup per row; x may be a column window of a wider row (x_off, pitch_x), and the
// result may replace that window (rms_store_inplace.wgsl: the compressed kv inside kv_a_proj's
// output is normalised where it lies) or go to a dense out (rms_store_out.wgsl). In place is safe:
// a row's reads all finish at the reduction's barrier, before any write.
// Holes: WG (prelude), Params (typegpu struct), store_out (helper).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.grid_x;
  let valid = row < params.rows;
  let base = row * params.pitch_x + params.x_off;
  var ss = 0.0;
  if (valid) {
    for (var c = lid; c < params.n; c = c + WG) {
      let v = x[base + c];
      ss = ss + v * v;
    }
  }
  let total = wg_sum(ss, lid);
  if (!valid) { return; }
  let r = inverseSqrt(total / f32(params.n) + params.eps);
  for (var c = lid; c < params.n; c = c + WG) {
    store_out(row, c, x[base + c] * r * w[c]);
  }
}
