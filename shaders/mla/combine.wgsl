// Merges the partial results of sequences split over several work items: lse = log sum exp(lse_i),
// out = sum exp(lse_i - lse) * out_i, then attnSink's factor exp(lse) / (exp(lse) + exp(sink)).
// A workgroup takes one (batch, token, head) row and WW of its output words. Its WG = SG * WW lanes
// share the partials SG ways, each lane issuing U loads before it adds them: the combine is load
// latency, not math (one workgroup per row walking 64 partials one load at a time took 66 us on an
// H100, docs/BENCHMARKS.md). Batches written directly by the decode pass are skipped.
// Holes: WG, WW, SG, U, DV, DVW, OUT_KIND, OUT_PITCH, HAS_SINK (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> scratch: array<f32>;
@group(0) @binding(2) var<storage, read> splits: array<vec2<i32>>;
@group(0) @binding(3) var<storage, read> sink: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

const START: f32 = -1.0e38; // below every partial lse but the decode pass's MASKED (-3e38) of an empty item

// (running max, sum of exp(x - max)) pairs, merged over the lanes; then the partial outputs.
var<workgroup> red: array<vec2<f32>, WG>;
var<workgroup> merged: vec2<f32>;
var<workgroup> wts: array<f32, WG>;

fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let rows_per_batch = params.s_q * params.h_q;
  let flat = wid.x + wid.y * params.grid_x;
  let row = flat / params.chunks;
  if (row >= params.b * rows_per_batch) { return; }
  let chunk = flat % params.chunks;
  let b = row / rows_per_batch;
  let rr = row % rows_per_batch;
  let t = rr / params.h_q;
  let h = rr % params.h_q;
  let sp = splits[b];
  if (sp.y == 0) { return; }
  let n = u32(sp.y);
  let lse_base = params.num_slots * rows_per_batch * DV;
  let lse_at = lse_base + u32(sp.x) * rows_per_batch + rr;

  var ms = vec2<f32>(START, 0.0);
  for (var s = lid; s < n; s = s + WG) { ms = merge(ms, vec2<f32>(scratch[lse_at + s * rows_per_batch], 1.0)); }
  red[lid] = ms;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k / 2u) {
    if (lid < k) { red[lid] = merge(red[lid], red[lid + k]); }
    workgroupBarrier();
  }
  if (lid == 0u) { merged = red[0]; }
  let all = workgroupUniformLoad(&merged);
  let empty = all.x <= START;
  let total = all.x + log(all.y);
  var factor = 1.0;
  if (HAS_SINK) { factor = 1.0 / (1.0 + exp(sink[h] - total)); }

  let w = chunk * WW + lid % WW;
  let grp = lid / WW;
  var acc = vec2<f32>(0.0);
  if (!empty) {
    // Partials in chunks of WG: their weights once into workgroup memory, then each lane's word of every SG-th one.
    for (var c0 = 0u; c0 < n; c0 = c0 + WG) {
      let cnt = min(WG, n - c0);
      wts[lid] = select(0.0, exp(scratch[lse_at + min(c0 + lid, n - 1u) * rows_per_batch] - total) * factor, lid < cnt);
      workgroupBarrier();
      for (var j = grp; j < cnt; j = j + SG * U) {
        var v: array<vec2<f32>, U>;
        for (var u = 0u; u < U; u = u + 1u) {
          let i = ((u32(sp.x) + c0 + min(j + SG * u, cnt - 1u)) * rows_per_batch + rr) * DV + 2u * min(w, DVW - 1u);
          v[u] = vec2<f32>(scratch[i], select(0.0, scratch[min(i + 1u, lse_base - 1u)], 2u * w + 1u < DV));
        }
        for (var u = 0u; u < U; u = u + 1u) {
          if (j + SG * u < cnt) { acc = acc + wts[j + SG * u] * v[u]; }
        }
      }
      workgroupBarrier();
    }
  }
  red[lid] = acc;
  workgroupBarrier();
  if (grp == 0u && w < DVW) {
    for (var g = 1u; g < SG; g = g + 1u) { acc = acc + red[g * WW + lid]; }
    store_out((b * params.s_q + t) * params.h_q + h, w, acc);
  }
  if (lid == 0u && chunk == 0u) {
    lse[(b * params.h_q + h) * params.s_q + t] = select(total, bitcast<f32>(params.inf_bits), empty);
  }
}
