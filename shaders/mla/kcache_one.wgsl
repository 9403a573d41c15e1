// The decode kernels' cache in one storage binding (binding 2).
@group(0) @binding(2) var<storage, read> kcache: array<u32>;

fn kword(i: u32) -> u32 {
  return kcache[i];
}
