// The unfused MLA baseline's gather (bench --mla): each sequence's bf16 cache rows (one kv head) copied
// into K [positions, d] for the QK^T GEMM and V^T [dv, positions] per sequence for the P.V GEMM (both
// GEMMs are NT: they read operands along k). Sequences are padded to whole blocks of 64 positions
// (zero rows). One invocation per (pair of positions, word of a row): two words read, two K words and
// two V^T words (channels 2e, 2e + 1 of both positions) written.
// Holes: WG, DW (words per row), DV, Params.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> kcache: array<u32>;
@group(0) @binding(2) var<storage, read> rows: array<i32>;
@group(0) @binding(3) var<storage, read> seg: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read_write> kc: array<u32>;
@group(0) @binding(5) var<storage, read_write> vt: array<u32>;

fn row_word(r: i32, e: u32) -> u32 {
  if (r < 0) { return 0u; }
  return kcache[u32(r) * params.k_pitch_words + e];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  let pair = i / DW;
  let e = i % DW;
  if (pair >= params.pairs) { return; }
  let p = 2u * pair;
  let w0 = row_word(rows[p], e);
  let w1 = row_word(rows[p + 1u], e);
  kc[p * DW + e] = w0;
  kc[(p + 1u) * DW + e] = w1;
  // seg[block of 64 positions] = (first position of its sequence, the sequence's padded length).
  let s = seg[p / 64u];
  let at = DV * s.x + p - s.x;
  if (2u * e < DV) { vt[(at + 2u * e * s.y) / 2u] = (w0 & 0xffffu) | (w1 << 16u); }
  if (2u * e + 1u < DV) { vt[(at + (2u * e + 1u) * s.y) / 2u] = (w0 >> 16u) | (w1 & 0xffff0000u); }
}
