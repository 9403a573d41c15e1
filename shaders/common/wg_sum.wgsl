// Sum over a workgroup of WG invocations (WG a power of two) through workgroup memory, a fixed
// tree: the same bits every run. Every invocation must call it (it has barriers).
var<workgroup> wg_red: array<f32, WG>;

fn wg_sum(v: f32, lid: u32) -> f32 {
  wg_red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { wg_red[lid] = wg_red[lid] + wg_red[lid + s]; }
    workgroupBarrier();
  }
  let r = wg_red[0];
  workgroupBarrier();
  return r;
}
