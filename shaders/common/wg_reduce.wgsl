// Workgroup reductions over WG invocations (WG a power of two) through workgroup memory, each a
// fixed tree: the same bits every run. Every invocation must call them (they have barriers).
var<workgroup> wg_red: array<f32, WG>;

// op 0: sum, op 1: max.
fn wg_reduce(v: f32, op: u32, lid: u32) -> f32 {
  wg_red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { wg_red[lid] = select(wg_red[lid] + wg_red[lid + s], max(wg_red[lid], wg_red[lid + s]), op == 1u); }
    workgroupBarrier();
  }
  let r = wg_red[0];
  workgroupBarrier();
  return r;
}

fn wg_sum(v: f32, lid: u32) -> f32 { return wg_reduce(v, 0u, lid); }
fn wg_max(v: f32, lid: u32) -> f32 { return wg_reduce(v, 1u, lid); }
