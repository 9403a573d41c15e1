// Workgroup argmax over (value, index) pairs (WG a power of two), a fixed tree: a larger value wins,
// an equal one at the lower index (as torch.argmax), NONE never. Callers leave NaN out. Every
// invocation gets the winning index (NONE if there is none) and must call it (it has barriers);
// wg_arg_v[0] holds the winner's value until the next call.
const NONE: u32 = 0xffffffffu;

var<workgroup> wg_arg_v: array<f32, WG>;
var<workgroup> wg_arg_i: array<u32, WG>;

// (va, ia) beats (vb, ib).
fn beats(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  if (ia == NONE) { return false; }
  if (ib == NONE) { return true; }
  return va > vb || (va == vb && ia < ib);
}

fn wg_argmax(v: f32, i: u32, lid: u32) -> u32 {
  wg_arg_v[lid] = v;
  wg_arg_i[lid] = i;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s && beats(wg_arg_v[lid + s], wg_arg_i[lid + s], wg_arg_v[lid], wg_arg_i[lid])) {
      wg_arg_v[lid] = wg_arg_v[lid + s];
      wg_arg_i[lid] = wg_arg_i[lid + s];
    }
    workgroupBarrier();
  }
  let win = workgroupUniformLoad(&wg_arg_i[0]);
  workgroupBarrier();   // everyone has read it before a next call overwrites it
  return win;
}
