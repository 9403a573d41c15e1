// Max over aligned segments of SEG invocations of a workgroup of WG. Offsets below SG_MIN (the
// adapter's smallest subgroup, 1 without the subgroups feature) use subgroup shuffles; the rest
// go through workgroup memory. Every invocation must call it (it has barriers).
var<workgroup> seg_red: array<f32, WG>;

fn segment_max(v_in: f32, lid: u32) -> f32 {
  var v = v_in;
  for (var off = 1u; off < min(SG_MIN, SEG); off = off << 1u) {
    v = max(v, shuffle_xor(v, off));
  }
  seg_red[lid] = v;
  workgroupBarrier();
  let lane = lid % SEG;
  for (var s = SEG / 2u; s >= SG_MIN; s = s >> 1u) {
    if (lane < s) {
      seg_red[lid] = max(seg_red[lid], seg_red[lid + s]);
    }
    workgroupBarrier();
  }
  let r = seg_red[lid - lane];
  workgroupBarrier();
  return r;
}
