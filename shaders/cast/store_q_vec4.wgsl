// A lane's 4 packed words of q (16 consecutive columns from col, q bound as vec4<u32> words: k is a
// multiple of 16, so the 16 columns are all in the row or all past it) in one 16-byte store.
fn store_q(first: u32, col: u32, k: u32, packed: array<u32, WPL>) {
  if (col < k) {
    q[first / 4u] = vec4<u32>(packed[0], packed[1], packed[2], packed[3]);
  }
}
