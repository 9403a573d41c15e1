// getDispatchLayout, pass 2 (one invocation): where each expert's rows start, and the expert load
// counters. Contiguous: groups back to back, each padded to ALIGN rows. Masked: expert e at e * mMax.
// starts[E] is the end of the rows in use.
// Holes: CONTIGUOUS, ALIGN, COUNT_LOAD (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> counts: array<i32>;
@group(0) @binding(2) var<storage, read_write> starts: array<i32>;
@group(0) @binding(3) var<storage, read_write> load: array<u32>;

@compute @workgroup_size(1)
fn main() {
  var acc = 0u;
  for (var e = 0u; e < params.experts; e = e + 1u) {
    let n = u32(counts[e]);
    if (CONTIGUOUS) {
      starts[e] = i32(acc);
      acc = acc + (n + ALIGN - 1u) / ALIGN * ALIGN;
    } else {
      starts[e] = i32(e * params.m_max);
    }
    if (COUNT_LOAD) { load[params.load_offset + e] = load[params.load_offset + e] + n; }
  }
  starts[params.experts] = i32(select(params.experts * params.m_max, acc, CONTIGUOUS));
}
