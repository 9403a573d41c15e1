// A lane's WPL packed words of q: word wi (columns col + wi * WORD_STRIDE ..) at q word
// first + wi * WORD_STRIDE / 4, one 4-byte store each; words at or past column k are not stored.
fn store_q(first: u32, col: u32, k: u32, packed: array<u32, WPL>) {
  // @unroll
  for (var wi = 0u; wi < WPL; wi++) {
    if (col + wi * WORD_STRIDE < k) {
      q[first + wi * WORD_STRIDE / 4u] = packed[wi];
    }
  }
}
