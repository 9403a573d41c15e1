// A cache larger than one storage binding: consecutive windows of KWIN words bound at bindings
// 2, 9, 10, 11 (windows past the cache's end are bound to its first word and never read).
// WGSL has no arrays of bindings, hence the branch; the window index is the same for all the words
// of a cache row except where a row straddles two windows.
@group(0) @binding(2) var<storage, read> kcache: array<u32>;
@group(0) @binding(9) var<storage, read> kcache1: array<u32>;
@group(0) @binding(10) var<storage, read> kcache2: array<u32>;
@group(0) @binding(11) var<storage, read> kcache3: array<u32>;

fn kword(i: u32) -> u32 {
  let w = i / KWIN;
  let j = i - w * KWIN;
  if (w == 0u) { return kcache[j]; }
  if (w == 1u) { return kcache1[j]; }
  if (w == 2u) { return kcache2[j]; }
  return kcache3[j];
}
