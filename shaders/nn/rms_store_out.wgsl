// rmsNorm's result into a dense out [rows, n].
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn store_out(row: u32, c: u32, v: f32) {
  out[row * params.n + c] = v;
}
