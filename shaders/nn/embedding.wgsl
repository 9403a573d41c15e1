// embedding: out[t, c] = table[ids[t], c], table f32 or bf16 (load_x), out f32. One invocation per
// output element. An id outside the table writes NaN, so a bad token shows instead of reading junk.
// Holes: WG, IN_BF16 (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (i >= params.tokens * params.hidden) { return; }
  let t = i / params.hidden;
  let c = i % params.hidden;
  let id = ids[t];
  if (id < 0 || u32(id) >= params.vocab) {
    // A var, not a constant: WGSL refuses NaN in constant expressions.
    var nan_bits = 0x7fc00000u;
    out[i] = bitcast<f32>(nan_bits);
    return;
  }
  out[i] = load_x(u32(id) * params.pitch + c);
}
