// Split-KV MLA decode, the row kernel: the fallback for fewer than 4 query rows per kv head or too
// little workgroup memory for decode_tiled.wgsl (its private arrays make it slow on big GPUs, see
// docs/BENCHMARKS.md). A workgroup takes one work item (a batch entry and a range of its KV
// positions), one kv head g and a tile of MT query rows that all read that head: the rows are
// (token, head) pairs, so every cache row is loaded once into workgroup memory and used by MT
// queries. Invocation (m, p) holds query row m's channel pairs p, p+P, ... in registers for the
// scores and the same pairs of its output. Online softmax in f32.
// Holes: WG, MT, P, BN, D, DV, DW, DVW, QN, ON, Q_KIND, K_KIND, OUT_KIND, Q_PITCH, OUT_PITCH,
// K_PITCH_WORDS, D_NOPE, FP8_TILE, FP8_TILES, SPARSE (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<u32>;
// binding 2: the cache (kcache_one.wgsl or kcache_split.wgsl)
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

var<workgroup> ktile: array<u32, BN * DW>;
// Partial sums of cache row nn start at nn * (WG + 1): the padding keeps the summing lanes on distinct banks.
var<workgroup> part: array<f32, BN * (WG + 1u)>;
var<workgroup> sc: array<f32, MT * BN>;
// This round's cache rows and the next one's, in alternate halves.
var<workgroup> krow: array<i32, 2u * BN>;
var<workgroup> span: vec2<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let item = work[wid.y];
  if (item.x < 0) { return; } // past the schedule's items (a replayable schedule's fixed grid)
  let b = u32(item.x);
  let g = wid.x % params.h_kv;
  let mtile = (wid.x / params.h_kv) % params.mtiles;
  let tg = wid.x / (params.h_kv * params.mtiles);
  let m = lid / P;
  let p = lid % P;
  let r = mtile * MT + m;
  let row_ok = r < params.m_rows;
  let rr = min(r, params.m_rows - 1u);
  var t = tg;
  var hh = rr;
  if (!SPARSE) {
    t = rr / params.hpk;
    hh = rr % params.hpk;
  }
  let h = g * params.hpk + hh;

  // KV positions this workgroup covers, clamped to what the sequence holds on the GPU.
  let avail = max(rows_b[b], 0);
  if (lid == 0u) {
    var len = u32(avail);
    if (SPARSE) { len = select(params.topk, min(u32(avail), params.topk), params.has_topk_len == 1u); }
    span = vec2<u32>(u32(item.y), min(u32(item.z), len));
  }
  // The first round's cache rows and the q row are loaded before the seqlen is known (the rows are
  // checked against it before any cache read), so the three loads wait on each other's latency once.
  for (var i = lid; i < BN; i = i + WG) { krow[i] = table_row(b, t, u32(item.y) + i); }
  let qrow = (b * params.s_q + t) * params.h_q + h;
  var qv: array<vec2<f32>, QN>;
  for (var i = 0u; i < QN; i = i + 1u) {
    let e = p + P * i;
    qv[i] = select(vec2<f32>(0.0), load_q(qrow, min(e, DW - 1u)), e < DW && row_ok);
  }
  let range = workgroupUniformLoad(&span);
  // The causal limit of this row's token: rows up to seqlen - s_q + t.
  var limit = i32(range.y);
  if (!SPARSE && params.causal == 1u) { limit = min(limit, avail - i32(params.s_q) + i32(t) + 1); }
  var o: array<vec2<f32>, ON>;
  for (var i = 0u; i < ON; i = i + 1u) { o[i] = vec2<f32>(0.0); }
  var mx = START;
  var l = 0.0;

  var kb = 0u; // this round's half of krow
  for (var c0 = range.x; c0 < range.y; c0 = c0 + BN) {
    for (var w = lid; w < BN * DW; w = w + WG) {
      let kr = select(-1, krow[kb + w / DW], c0 + w / DW < range.y);
      ktile[w] = select(0u, load_k_word(u32(max(kr, 0)), g, w % DW), kr >= 0);
    }
    // The next round's cache rows, looked up while this round computes, into the other half (last
    // read before the previous round's closing barrier).
    for (var i = lid; i < BN; i = i + WG) { krow[BN - kb + i] = table_row(b, t, c0 + BN + i); }
    workgroupBarrier();
    // Partial dot products over this invocation's channel pairs.
    for (var nn = 0u; nn < BN; nn = nn + 1u) {
      var acc = 0.0;
      for (var i = 0u; i < QN; i = i + 1u) {
        let e = p + P * i;
        if (e < DW) { acc = acc + dot(qv[i], unpack_pair(ktile[nn * DW + e], K_TILE_KIND)); }
      }
      part[nn * (WG + 1u) + lid] = acc;
    }
    workgroupBarrier();
    for (var nn = p; nn < BN; nn = nn + P) {
      var s = 0.0;
      for (var pp = 0u; pp < P; pp = pp + 1u) { s = s + part[nn * (WG + 1u) + m * P + pp]; }
      sc[m * BN + nn] = select(MASKED, s * params.scale, krow[kb + nn] >= 0 && i32(c0 + nn) < limit);
    }
    workgroupBarrier();
    var cmax = MASKED;
    for (var nn = 0u; nn < BN; nn = nn + 1u) { cmax = max(cmax, sc[m * BN + nn]); }
    let mnew = max(mx, cmax);
    let alpha = exp(mx - mnew);
    l = l * alpha;
    for (var i = 0u; i < ON; i = i + 1u) { o[i] = o[i] * alpha; }
    for (var nn = 0u; nn < BN; nn = nn + 1u) {
      let pn = exp(sc[m * BN + nn] - mnew);
      l = l + pn;
      for (var i = 0u; i < ON; i = i + 1u) {
        let e = p + P * i;
        if (e < DVW) { o[i] = o[i] + pn * unpack_pair(ktile[nn * DW + e], K_TILE_KIND); }
      }
    }
    mx = mnew;
    kb = BN - kb;
    workgroupBarrier();
  }

  if (!row_ok) { return; }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  let rows_per_batch = params.s_q * params.h_q;
  if (item.w < 0) {
    for (var i = 0u; i < ON; i = i + 1u) {
      let e = p + P * i;
      if (e < DVW) { store_out(qrow, e, o[i] * inv); }
    }
    if (p == 0u) {
      lse[(b * params.h_q + h) * params.s_q + t] = select(bitcast<f32>(params.inf_bits), mx + log(l), l > 0.0);
    }
  } else {
    let srow = u32(item.w) * rows_per_batch + t * params.h_q + h;
    for (var i = 0u; i < ON; i = i + 1u) {
      let e = p + P * i;
      if (e < DVW) {
        let v = o[i] * inv;
        scratch[srow * DV + 2u * e] = v.x;
        if (2u * e + 1u < DV) { scratch[srow * DV + 2u * e + 1u] = v.y; }
      }
    }
    if (p == 0u) { scratch[params.num_slots * rows_per_batch * DV + srow] = select(MASKED, mx + log(l), l > 0.0); }
  }
}
