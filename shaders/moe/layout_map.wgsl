// getDispatchLayout, pass 3, one invocation per entry and per row: entry i (token i / K, slot
// i % K) -> its dispatched row src_to_dst[i] and that row's token dst_to_src; contiguous layout:
// row r -> its expert m_indices[r] (-1 for padding, whose dst_to_src is -1 too). Each element has one writer.
// Holes: WG, K, CONTIGUOUS (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> topk_idx: array<i32>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read> counts: array<i32>;
@group(0) @binding(4) var<storage, read> starts: array<i32>;
@group(0) @binding(5) var<storage, read_write> src_to_dst: array<i32>;
@group(0) @binding(6) var<storage, read_write> dst_to_src: array<i32>;
@group(0) @binding(7) var<storage, read_write> m_indices: array<i32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (i < params.entries) {
    var dst = -1;
    if (pos[i] >= 0) { dst = starts[topk_idx[i]] + pos[i]; }
    src_to_dst[i] = dst;
    if (dst >= 0) { dst_to_src[dst] = i32(i / K); }
  }
  if (CONTIGUOUS && i < params.rows) {
    // The last expert starting at or before row i owns it (an empty expert shares its start
    // with the next one, so the last of them is the one with rows).
    var lo = 0u;
    var hi = params.experts - 1u;
    while (lo < hi) {
      let mid = (lo + hi + 1u) / 2u;
      if (u32(starts[mid]) <= i) { lo = mid; } else { hi = mid - 1u; }
    }
    if (i - u32(starts[lo]) >= u32(counts[lo])) {
      m_indices[i] = -1;
      dst_to_src[i] = -1;
    } else {
      m_indices[i] = i32(lo);
    }
  }
}
