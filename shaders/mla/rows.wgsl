// Which cache rows and query rows a decode workgroup works on (both decode kernels).

// Cache row of KV position n of (batch b, token t), or -1 where it must not be read.
fn cache_row(b: u32, t: u32, n: u32) -> i32 {
  if (SPARSE) {
    let idx = rows_a[(b * params.s_q + t) * params.topk + n];
    return select(-1, idx, idx >= 0 && u32(idx) < params.num_rows);
  }
  let blk = rows_a[b * params.max_blocks + n / params.block_size];
  return select(-1, blk * i32(params.block_size) + i32(n % params.block_size), blk >= 0 && u32(blk) < params.num_blocks);
}

// cache_row for a position that may lie past the sequence (looked up before its length is read):
// -1 past its block-table row (indices row); the caller masks positions past the length.
fn table_row(b: u32, t: u32, n: u32) -> i32 {
  if (select(n / params.block_size >= params.max_blocks, n >= params.topk, SPARSE)) { return -1; }
  return cache_row(b, t, n);
}

// (token, head) of query row r of those served for kv head g (and token tg in sparse mode).
fn row_token_head(r: u32, g: u32, tg: u32) -> vec2<u32> {
  if (SPARSE) { return vec2<u32>(tg, g * params.hpk + r); }
  return vec2<u32>(r / params.hpk, g * params.hpk + r % params.hpk);
}
