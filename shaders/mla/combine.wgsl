// Merges the partial results of sequences split over several work items: lse = log sum exp(lse_i),
// out = sum exp(lse_i - lse) * out_i, then attnSink's factor exp(lse) / (exp(lse) + exp(sink)).
// One workgroup per (batch, token, head); batches written directly by the decode pass are skipped.
// Holes: WG, DV, DVW, OUT_KIND, OUT_PITCH, HAS_SINK (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> scratch: array<f32>;
@group(0) @binding(2) var<storage, read> splits: array<vec2<i32>>;
@group(0) @binding(3) var<storage, read> sink: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let rows_per_batch = params.s_q * params.h_q;
  let flat = wid.x + wid.y * params.grid_x;
  if (flat >= params.b * rows_per_batch) { return; }
  let b = flat / rows_per_batch;
  let rr = flat % rows_per_batch;
  let t = rr / params.h_q;
  let h = rr % params.h_q;
  let sp = splits[b];
  if (sp.y == 0) { return; }
  let lse_base = params.num_slots * rows_per_batch * DV;
  var mx = -1.0e38;
  for (var s = 0; s < sp.y; s = s + 1) { mx = max(mx, scratch[lse_base + u32(sp.x + s) * rows_per_batch + rr]); }
  let empty = mx <= -1.0e38;
  var sum = 0.0;
  for (var s = 0; s < sp.y; s = s + 1) { sum = sum + exp(scratch[lse_base + u32(sp.x + s) * rows_per_batch + rr] - mx); }
  let total = mx + log(sum);
  var factor = 1.0;
  if (HAS_SINK) { factor = 1.0 / (1.0 + exp(sink[h] - total)); }
  let orow = (b * params.s_q + t) * params.h_q + h;
  for (var e = lid; e < DVW; e = e + WG) {
    var acc = vec2<f32>(0.0);
    if (!empty) {
      for (var s = 0; s < sp.y; s = s + 1) {
        let srow = u32(sp.x + s) * rows_per_batch + rr;
        let w = exp(scratch[lse_base + srow] - total) * factor;
        let i = srow * DV + 2u * e;
        acc = acc + w * vec2<f32>(scratch[i], select(0.0, scratch[min(i + 1u, lse_base - 1u)], 2u * e + 1u < DV));
      }
    }
    store_out(orow, e, acc);
  }
  if (lid == 0u) {
    lse[(b * params.h_q + h) * params.s_q + t] = select(total, bitcast<f32>(params.inf_bits), empty);
  }
}
