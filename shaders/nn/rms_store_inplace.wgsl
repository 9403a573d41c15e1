// rmsNorm's result over its input window.
fn store_out(row: u32, c: u32, v: f32) {
  x[row * params.pitch_x + params.x_off + c] = v;
}
