// Dispatch latency ceiling: one workgroup that updates its own words in place, so each dispatch of
// the chain depends on the one before (the device must finish one before starting the next), and
// the work inside is nothing: the chain's time per dispatch is what a launch costs a decode step.
// Holes: WG (prelude).
@group(0) @binding(0) var<storage, read_write> x: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) i: u32) {
  x[i] = x[i] * 3u + 1u;
}
