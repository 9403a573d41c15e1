// Test probe for shaders/common: OP 0 encodes f32 bits to e4m3, OP 1 decodes e4m3 codes,
// OP 2 divides pairs with div_rn. Hole: OP (prelude).
@group(0) @binding(0) var<storage, read> inp: array<u32>;
@group(0) @binding(1) var<storage, read_write> outp: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= arrayLength(&outp)) { return; }
  if (OP == 0u) {
    outp[i] = e4m3_encode(inp[i]);
  } else if (OP == 1u) {
    outp[i] = bitcast<u32>(e4m3_decode(inp[i]));
  } else {
    outp[i] = bitcast<u32>(div_rn(bitcast<f32>(inp[2u * i]), bitcast<f32>(inp[2u * i + 1u])));
  }
}
