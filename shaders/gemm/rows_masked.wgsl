// Masked grouped layout: region z holds params.m (= mMax) rows of group z, of which the first
// masked_m[z] are computed; the rest of the output is left as it was.
@group(0) @binding(7) var<storage, read> masked_m: array<i32>;

fn mode_rows(z: u32) -> u32 {
  return u32(clamp(masked_m[z], 0i, i32(params.m)));
}

fn mode_group(z: u32, row0: u32) -> i32 {
  return i32(z);
}

fn row_live(row: u32, g: i32) -> bool {
  return true;
}
