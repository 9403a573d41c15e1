// Masked layout walked by routed entries (decode: a few tokens, many experts): grid z runs over
// `routed` (group ids, e.g. the tokens' topk ids; -1 or out of range for none) instead of every
// group, so groups nobody picked launch no workgroups. A group named by an earlier entry too is
// left to that entry's workgroups: each named group is computed once.
@group(0) @binding(10) var<storage, read> routed: array<i32>;

const NO_REGION = 0xffffffffu;

fn mode_z(zi: u32) -> u32 {
  let e = routed[zi];
  if (e < 0i || u32(e) >= params.groups) { return NO_REGION; }
  for (var j = 0u; j < zi; j++) {
    if (routed[j] == e) { return NO_REGION; }
  }
  return u32(e);
}
