// Streaming read ceiling: every invocation sums a grid-strided run of vec4<u32> words (coalesced:
// neighbours read neighbouring words) and writes one u32, so the bytes read dominate.
// Holes: WG (prelude), Params (typegpu struct).
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  var acc = vec4<u32>(0u);
  for (var i = gid.x; i < params.n; i = i + params.threads) {
    acc = acc + src[i];
  }
  dst[gid.x] = acc.x + acc.y + acc.z + acc.w;
}
