// Split-KV MLA decode. A workgroup takes one work item (a batch entry and a range of its KV
// positions), one kv head g and a tile of MT query rows that all read that head: the rows are
// (token, head) pairs, so every cache row is loaded once into workgroup memory and used by MT
// queries. Invocation (mg, p) holds R query rows (mg*R ..) and, of each, the channel pairs
// p, p+P, ... in registers, for the scores and for its share of the output: every K word read from
// workgroup memory feeds 2R FMAs. Partial dot products meet in workgroup memory; online softmax in f32.
// Holes: WG, MT, R, P, BN, D, DV, DW, DVW, QN, ON, Q_KIND, K_KIND, K_TILE_KIND, OUT_KIND, Q_PITCH,
// OUT_PITCH, K_PITCH_WORDS, D_NOPE, FP8_TILE, FP8_TILES, SPARSE (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<u32>;
@group(0) @binding(2) var<storage, read> kcache: array<u32>;
// Dense: block_table [b, max_blocks] and cache_seqlens [b]. Sparse: indices [b, s_q, topk] and topk_length [b].
@group(0) @binding(3) var<storage, read> rows_a: array<i32>;
@group(0) @binding(4) var<storage, read> rows_b: array<i32>;
@group(0) @binding(5) var<storage, read> work: array<vec4<i32>>;
@group(0) @binding(6) var<storage, read_write> out: array<u32>;
@group(0) @binding(7) var<storage, read_write> lse: array<f32>;
// Partial outputs [num_slots, s_q * h_q, DV], then their lse [num_slots, s_q * h_q].
@group(0) @binding(8) var<storage, read_write> scratch: array<f32>;

const MASKED: f32 = -3.0e38;   // a masked score: exp(MASKED - m) is 0 for every m >= START
const START: f32 = -1.0e38;    // the running max before any score
// Partial sums of lane p start at p * PSTRIDE: an odd stride keeps the lanes' writes on distinct banks.
const PSTRIDE: u32 = MT * BN + 1u;

var<workgroup> ktile: array<u32, BN * DW>;
var<workgroup> part: array<f32, P * PSTRIDE>;
var<workgroup> sc: array<f32, MT * BN>;
var<workgroup> krow: array<i32, BN>;
var<workgroup> span: vec2<u32>;

// Cache row of KV position n of (batch b, token t), or -1 where it must not be read.
fn cache_row(b: u32, t: u32, n: u32) -> i32 {
  if (SPARSE) {
    let idx = rows_a[(b * params.s_q + t) * params.topk + n];
    return select(-1, idx, idx >= 0 && u32(idx) < params.num_rows);
  }
  let blk = rows_a[b * params.max_blocks + n / params.block_size];
  return select(-1, blk * i32(params.block_size) + i32(n % params.block_size), blk >= 0 && u32(blk) < params.num_blocks);
}

// (token, head) of query row r (of the m_rows served for kv head g, token group tg).
fn row_token_head(r: u32, g: u32, tg: u32) -> vec2<u32> {
  if (SPARSE) { return vec2<u32>(tg, g * params.hpk + r); }
  return vec2<u32>(r / params.hpk, g * params.hpk + r % params.hpk);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let item = work[wid.x];
  let b = u32(item.x);
  let g = wid.y % params.h_kv;
  let mtile = (wid.y / params.h_kv) % params.mtiles;
  let tg = wid.y / (params.h_kv * params.mtiles);
  let mg = lid / P;
  let p = lid % P;
  let row0 = mtile * MT;

  // KV positions this workgroup covers, clamped to what the sequence holds on the GPU.
  let avail = max(rows_b[b], 0);
  if (lid == 0u) {
    var len = u32(avail);
    if (SPARSE) { len = select(params.topk, min(u32(avail), params.topk), params.has_topk_len == 1u); }
    span = vec2<u32>(u32(item.y), min(u32(item.z), len));
  }
  let range = workgroupUniformLoad(&span);

  var qv: array<vec2<f32>, R * QN>;
  var o: array<vec2<f32>, R * ON>;
  var mx: array<f32, R>;
  var l: array<f32, R>;
  for (var r = 0u; r < R; r = r + 1u) {
    let row = row0 + mg * R + r;
    let th = row_token_head(min(row, params.m_rows - 1u), g, tg);
    let qrow = (b * params.s_q + th.x) * params.h_q + th.y;
    for (var i = 0u; i < QN; i = i + 1u) {
      let e = p + P * i;
      qv[r * QN + i] = select(vec2<f32>(0.0), load_q(qrow, min(e, DW - 1u)), e < DW && row < params.m_rows);
    }
    for (var i = 0u; i < ON; i = i + 1u) { o[r * ON + i] = vec2<f32>(0.0); }
    mx[r] = START;
    l[r] = 0.0;
  }

  for (var c0 = range.x; c0 < range.y; c0 = c0 + BN) {
    if (lid < BN) {
      krow[lid] = select(-1, cache_row(b, tg, c0 + lid), c0 + lid < range.y);
    }
    workgroupBarrier();
    for (var w = lid; w < BN * DW; w = w + WG) {
      let kr = krow[w / DW];
      ktile[w] = select(0u, load_k_word(u32(max(kr, 0)), g, w % DW), kr >= 0);
    }
    workgroupBarrier();
    // Partial dot products over this invocation's channel pairs, R rows at once.
    for (var nn = 0u; nn < BN; nn = nn + 1u) {
      var acc: array<f32, R>;
      for (var r = 0u; r < R; r = r + 1u) { acc[r] = 0.0; }
      for (var i = 0u; i < QN; i = i + 1u) {
        let e = p + P * i;
        if (e < DW) {
          let kk = unpack_pair(ktile[nn * DW + e], K_TILE_KIND);
          for (var r = 0u; r < R; r = r + 1u) { acc[r] = acc[r] + dot(qv[r * QN + i], kk); }
        }
      }
      for (var r = 0u; r < R; r = r + 1u) { part[p * PSTRIDE + nn * MT + mg * R + r] = acc[r]; }
    }
    workgroupBarrier();
    // Sum the P partials of each (row, position); mask what the row must not see.
    for (var x = lid; x < MT * BN; x = x + WG) {
      var s = 0.0;
      for (var pp = 0u; pp < P; pp = pp + 1u) { s = s + part[pp * PSTRIDE + x]; }
      let nn = x / MT;
      let m = x % MT;
      var limit = i32(range.y);
      if (!SPARSE && params.causal == 1u) {
        // Token t sees cache rows up to seqlen - s_q + t.
        let t = row_token_head(min(row0 + m, params.m_rows - 1u), g, tg).x;
        limit = min(limit, avail - i32(params.s_q) + i32(t) + 1);
      }
      let ok = krow[nn] >= 0 && i32(c0 + nn) < limit;
      sc[m * BN + nn] = select(MASKED, s * params.scale, ok);
    }
    workgroupBarrier();
    for (var r = 0u; r < R; r = r + 1u) {
      let m = mg * R + r;
      var cmax = MASKED;
      for (var nn = 0u; nn < BN; nn = nn + 1u) { cmax = max(cmax, sc[m * BN + nn]); }
      let mnew = max(mx[r], cmax);
      let alpha = exp(mx[r] - mnew);
      l[r] = l[r] * alpha;
      for (var i = 0u; i < ON; i = i + 1u) { o[r * ON + i] = o[r * ON + i] * alpha; }
      mx[r] = mnew;
    }
    for (var nn = 0u; nn < BN; nn = nn + 1u) {
      var pr: array<f32, R>;
      for (var r = 0u; r < R; r = r + 1u) {
        pr[r] = exp(sc[(mg * R + r) * BN + nn] - mx[r]);
        l[r] = l[r] + pr[r];
      }
      for (var i = 0u; i < ON; i = i + 1u) {
        let e = p + P * i;
        if (e < DVW) {
          let v = unpack_pair(ktile[nn * DW + e], K_TILE_KIND);
          for (var r = 0u; r < R; r = r + 1u) { o[r * ON + i] = o[r * ON + i] + pr[r] * v; }
        }
      }
    }
    workgroupBarrier();
  }

  let rows_per_batch = params.s_q * params.h_q;
  for (var r = 0u; r < R; r = r + 1u) {
    let row = row0 + mg * R + r;
    if (row >= params.m_rows) { break; }
    let th = row_token_head(row, g, tg);
    let qrow = (b * params.s_q + th.x) * params.h_q + th.y;
    let inv = select(0.0, 1.0 / l[r], l[r] > 0.0);
    if (item.w < 0) {
      for (var i = 0u; i < ON; i = i + 1u) {
        let e = p + P * i;
        if (e < DVW) { store_out(qrow, e, o[r * ON + i] * inv); }
      }
      if (p == 0u) {
        lse[(b * params.h_q + th.y) * params.s_q + th.x] = select(bitcast<f32>(params.inf_bits), mx[r] + log(l[r]), l[r] > 0.0);
      }
    } else {
      let srow = u32(item.w) * rows_per_batch + th.x * params.h_q + th.y;
      for (var i = 0u; i < ON; i = i + 1u) {
        let e = p + P * i;
        if (e < DVW) {
          let v = o[r * ON + i] * inv;
          scratch[srow * DV + 2u * e] = v.x;
          if (2u * e + 1u < DV) { scratch[srow * DV + 2u * e + 1u] = v.y; }
        }
      }
      if (p == 0u) { scratch[params.num_slots * rows_per_batch * DV + srow] = select(MASKED, mx[r] + log(l[r]), l[r] > 0.0); }
    }
  }
}
