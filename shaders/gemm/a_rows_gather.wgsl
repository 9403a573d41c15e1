// Rows gathered from A (a masked layout read straight from the token rows: DeepEP's dispatch
// without its copy): row z * m + r of the problem reads A's row a_rows[z * m + r], clamped into A.
@group(0) @binding(11) var<storage, read> a_rows: array<i32>;

fn a_row(row: u32) -> u32 {
  return u32(clamp(a_rows[row], 0i, i32(params.a_rows) - 1i));
}
