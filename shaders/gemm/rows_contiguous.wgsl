// Contiguous grouped layout: row r multiplies B group m_indices[r]; -1 marks a padding row. A tile
// (never taller than the alignment) takes its group from its first row; rows that disagree with it
// (padding) are written as zeros.
@group(0) @binding(7) var<storage, read> m_indices: array<i32>;

fn mode_rows(z: u32) -> u32 {
  return params.m;
}

fn mode_group(z: u32, row0: u32) -> i32 {
  return select(-1i, m_indices[row0], row0 < params.m);
}

fn row_live(row: u32, g: i32) -> bool {
  return m_indices[row] == g;
}
