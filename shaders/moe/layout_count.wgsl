// getDispatchLayout, pass 1: one workgroup per expert scans topk_idx [entries = tokens * K] in
// order and gives each entry routed to its expert its position among them (token order), with a
// workgroup prefix sum per chunk: no atomics, so the layout is the same every run. DIRECT (the
// masked layout, where expert e's rows start at e * m_max whatever the counts): the entry's row
// goes straight to src_to_dst, its token to dst_to_src, and this is the only pass.
// Holes: WG, K, DIRECT (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> topk_idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> pos: array<i32>;
@group(0) @binding(3) var<storage, read_write> counts: array<i32>;
@group(0) @binding(4) var<storage, read_write> src_to_dst: array<i32>;
@group(0) @binding(5) var<storage, read_write> dst_to_src: array<i32>;

var<workgroup> scan: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = i32(wid.x + wid.y * params.grid_x);
  var base = 0u;
  for (var c = 0u; c < params.entries; c = c + WG) {
    let i = c + lid;
    var id = -2;
    if (i < params.entries) { id = topk_idx[i]; }
    let hit = id == e;
    scan[lid] = select(0u, 1u, hit);
    workgroupBarrier();
    // Inclusive Hillis-Steele scan.
    for (var off = 1u; off < WG; off = off << 1u) {
      var v = 0u;
      if (lid >= off) { v = scan[lid - off]; }
      workgroupBarrier();
      scan[lid] = scan[lid] + v;
      workgroupBarrier();
    }
    if (hit) {
      pos[i] = i32(base + scan[lid] - 1u);
      if (DIRECT) {
        let dst = e * i32(params.m_max) + pos[i];
        src_to_dst[i] = dst;
        dst_to_src[dst] = i32(i / K);
      }
    }
    // Entries routed nowhere (-1, or an id out of range) are marked once, by expert 0's workgroup.
    if (e == 0 && i < params.entries && (id < 0 || u32(id) >= params.experts)) {
      pos[i] = -1;
      if (DIRECT) { src_to_dst[i] = -1; }
    }
    base = base + scan[WG - 1u];
    workgroupBarrier();
  }
  if (lid == 0u) { counts[e] = i32(base); }
}
