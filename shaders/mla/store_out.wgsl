// The output store shared by the decode and combine passes.

// Writes channels 2e, 2e+1 (those below DV) of out row `row`.
fn store_out(row: u32, e: u32, v_in: vec2<f32>) {
  let v = select(v_in, vec2<f32>(v_in.x, 0.0), 2u * e + 1u >= DV);
  if (OUT_KIND == 0u) {
    let i = row * DV + 2u * e;
    out[i] = bitcast<u32>(v.x);
    if (2u * e + 1u < DV) { out[i + 1u] = bitcast<u32>(v.y); }
  } else {
    out[(row * OUT_PITCH) / 2u + e] = pack_pair(v, OUT_KIND);
  }
}
