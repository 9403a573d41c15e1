// Dense layout: one region of params.m rows, all against B group 0.
fn mode_rows(z: u32) -> u32 {
  return params.m;
}

fn mode_group(z: u32, row0: u32) -> i32 {
  return 0i;
}

fn row_live(row: u32, g: i32) -> bool {
  return true;
}
