// Split-KV MLA decode shaped like a GEMM, for GPUs where register tiles pay (the fast path).
// A workgroup takes one work item, one kv head g and MT query rows of that head, and walks the
// item's KV positions BN at a time; per tile, two small GEMMs:
//   A. scores S[MT, BN] = q . k over d, DK channels at a time: q and K staged row-major in
//      workgroup memory as f32 (rows padded by one vec4 so that lanes reading different rows at the
//      same channels hit different banks); each invocation keeps a 4 x 4 register tile of scores;
//   B. online softmax per row, TPR invocations per row, probabilities written over the scores;
//   C. out[MT, DV] += P . V, V staged BNV cache rows at a time (rows padded to VS vec4s with zeros);
//      each invocation keeps 4 rows x VC vec4 columns of the output (VC = 4, or fewer where more
//      invocations share the columns).
// Staging goes through registers, holding the cache words as stored (decoded when written to
// workgroup memory: half the registers of f32), into two buffers used in turn, so one barrier per
// round suffices: a round writes one chunk into one buffer, issues the next chunk's global loads
// and then computes the chunk before from the other buffer while those loads fly (software pipelining).
// Invocation tiles (both GEMMs): rows am + MQ * i, score columns an + GA_N * j (output vec4 columns
// the same), i, j < 4, where MQ = MT / 4. Within each 32 invocations, LM rows x LN columns: every
// vec4 read of workgroup memory in the inner loops is a broadcast or touches each bank once.
// Register tiles are named variables, not arrays: a private array indexed in a loop may live in
// local memory, which cost the first kernels most of their speed.
// Every cache row is read once per workgroup for its scores and once for its values (an L2 hit).
// Holes: WG, MT, MQ, BN, DK, NK (chunks of d), KS4, BNV, QPT, KPT, VPT (staging items per invocation), GA_N, LM, LN, TPR, CPT, VS, VC, STAGE4, D, DV, DW, DVW, DV4
// plus the io consts of load.wgsl / store_out.wgsl (prelude), Params (typegpu struct, as decode.wgsl).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<u32>;
// binding 2: the cache (kcache_one.wgsl or kcache_split.wgsl)
@group(0) @binding(3) var<storage, read> rows_a: array<i32>;
@group(0) @binding(4) var<storage, read> rows_b: array<i32>;
@group(0) @binding(5) var<storage, read> work: array<vec4<i32>>;
@group(0) @binding(6) var<storage, read_write> out: array<u32>;
@group(0) @binding(7) var<storage, read_write> lse: array<f32>;
@group(0) @binding(8) var<storage, read_write> scratch: array<f32>;

const MASKED: f32 = -3.0e38;
const START: f32 = -1.0e38;

var<workgroup> qs: array<vec4<f32>, 2 * MT * KS4>;   // two q chunks, [row][DK/4 + 1]
var<workgroup> stage: array<vec4<f32>, 2 * STAGE4>;  // two K chunks [BN][DK/4 + 1] in A, V rows [BNV][VS] in C
var<workgroup> ps: array<vec4<f32>, BN * MQ>;    // scores, then probabilities: [position][am] of rows am + MQ * i
var<workgroup> red: array<f32, WG>;
var<workgroup> row_m: array<f32, MT>;
var<workgroup> row_l: array<f32, MT>;
var<workgroup> row_alpha: array<f32, MT>;
var<workgroup> krow: array<i32, BN>;
var<workgroup> span: vec2<u32>;

// Score (or probability) of row r at tile position n.
fn ps_at(n: u32, r: u32) -> f32 {
  return ps[n * MQ + r % MQ][r / MQ];
}

fn ps_set(n: u32, r: u32, v: f32) {
  ps[n * MQ + r % MQ][r / MQ] = v;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let item = work[wid.y];
  if (item.x < 0) { return; } // past the schedule's items (a replayable schedule's fixed grid)
  let b = u32(item.x);
  let g = wid.x % params.h_kv;
  let mtile = (wid.x / params.h_kv) % params.mtiles;
  let tg = wid.x / (params.h_kv * params.mtiles);
  let row0 = mtile * MT;
  let avail = max(rows_b[b], 0);
  if (lid == 0u) {
    var len = u32(avail);
    if (SPARSE) { len = select(params.topk, min(u32(avail), params.topk), params.has_topk_len == 1u); }
    span = vec2<u32>(u32(item.y), min(u32(item.z), len));
  }
  for (var i = lid; i < MT; i = i + WG) {
    row_m[i] = START;
    row_l[i] = 0.0;
  }
  let range = workgroupUniformLoad(&span);
  // The tile of this invocation: LM x LN per 32 invocations, warps laid over MQ / LM rows first.
  let lane = lid % 32u;
  let warp = lid / 32u;
  let am = lane / LN + LM * (warp % (MQ / LM));
  let an = lane % LN + LN * (warp / (MQ / LM));
  let bm = lid % MT;
  let bq = lid / MT;
  // The causal limit of row bm (phase B masks with it).
  var limit = i32(range.y);
  if (!SPARSE && params.causal == 1u) {
    let t = row_token_head(min(row0 + bm, params.m_rows - 1u), g, tg).x;
    limit = min(limit, avail - i32(params.s_q) + i32(t) + 1);
  }
  var o00 = vec4<f32>(0.0); var o01 = vec4<f32>(0.0); var o02 = vec4<f32>(0.0); var o03 = vec4<f32>(0.0);
  var o10 = vec4<f32>(0.0); var o11 = vec4<f32>(0.0); var o12 = vec4<f32>(0.0); var o13 = vec4<f32>(0.0);
  var o20 = vec4<f32>(0.0); var o21 = vec4<f32>(0.0); var o22 = vec4<f32>(0.0); var o23 = vec4<f32>(0.0);
  var o30 = vec4<f32>(0.0); var o31 = vec4<f32>(0.0); var o32 = vec4<f32>(0.0); var o33 = vec4<f32>(0.0);

  for (var c0 = range.x; c0 < range.y; c0 = c0 + BN) {
    for (var i = lid; i < BN; i = i + WG) { krow[i] = select(-1, cache_row(b, tg, c0 + i), c0 + i < range.y); }
    workgroupBarrier();
    // A: scores; a_i holds row am + MQ * i at columns an + GA_N * j in component j.
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var pq: array<vec4<f32>, QPT>;
    var pk: array<vec2<u32>, KPT>;
    fetch_a(&pq, &pk, lid, 0u, b, g, tg, row0);
    // Round i writes chunk i into buffer i % 2, issues chunk i + 1's loads and computes chunk i - 1.
    for (var i = 0u; i <= NK; i = i + 1u) {
      if (i < NK) { store_a(&pq, &pk, lid, i % 2u, i * DK); }
      if (i + 1u < NK) { fetch_a(&pq, &pk, lid, (i + 1u) * DK, b, g, tg, row0); }
      if (i > 0u) {
        let cur = (i - 1u) % 2u;
        let qb = cur * MT * KS4;
        let kb = cur * STAGE4;
        for (var c4 = 0u; c4 < DK / 4u; c4 = c4 + 1u) {
          let k0v = stage[kb + an * KS4 + c4];
          let k1v = stage[kb + (an + GA_N) * KS4 + c4];
          let k2v = stage[kb + (an + 2u * GA_N) * KS4 + c4];
          let k3v = stage[kb + (an + 3u * GA_N) * KS4 + c4];
          let q0v = qs[qb + am * KS4 + c4];
          let q1v = qs[qb + (am + MQ) * KS4 + c4];
          let q2v = qs[qb + (am + 2u * MQ) * KS4 + c4];
          let q3v = qs[qb + (am + 3u * MQ) * KS4 + c4];
          let kx = vec4<f32>(k0v.x, k1v.x, k2v.x, k3v.x);
          let ky = vec4<f32>(k0v.y, k1v.y, k2v.y, k3v.y);
          let kz = vec4<f32>(k0v.z, k1v.z, k2v.z, k3v.z);
          let kw = vec4<f32>(k0v.w, k1v.w, k2v.w, k3v.w);
          a0 = fma(vec4<f32>(q0v.x), kx, a0); a0 = fma(vec4<f32>(q0v.y), ky, a0); a0 = fma(vec4<f32>(q0v.z), kz, a0); a0 = fma(vec4<f32>(q0v.w), kw, a0);
          a1 = fma(vec4<f32>(q1v.x), kx, a1); a1 = fma(vec4<f32>(q1v.y), ky, a1); a1 = fma(vec4<f32>(q1v.z), kz, a1); a1 = fma(vec4<f32>(q1v.w), kw, a1);
          a2 = fma(vec4<f32>(q2v.x), kx, a2); a2 = fma(vec4<f32>(q2v.y), ky, a2); a2 = fma(vec4<f32>(q2v.z), kz, a2); a2 = fma(vec4<f32>(q2v.w), kw, a2);
          a3 = fma(vec4<f32>(q3v.x), kx, a3); a3 = fma(vec4<f32>(q3v.y), ky, a3); a3 = fma(vec4<f32>(q3v.z), kz, a3); a3 = fma(vec4<f32>(q3v.w), kw, a3);
        }
      }
      workgroupBarrier();
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
      ps[(an + GA_N * j) * MQ + am] = vec4<f32>(a0[j], a1[j], a2[j], a3[j]) * params.scale;
    }
    // The first V rows' loads fly during the softmax.
    var pv: array<vec2<u32>, VPT>;
    fetch_c(&pv, lid, 0u, g);
    workgroupBarrier();
    // B: online softmax of row bm over its columns bq, bq + TPR, ...
    var lmax = MASKED;
    for (var j = 0u; j < CPT; j = j + 1u) {
      let n = bq + TPR * j;
      let s = select(MASKED, ps_at(n, bm), krow[n] >= 0 && i32(c0 + n) < limit);
      ps_set(n, bm, s);
      lmax = max(lmax, s);
    }
    red[lid] = lmax;
    workgroupBarrier();
    var mnew = row_m[bm];
    for (var x = 0u; x < TPR; x = x + 1u) { mnew = max(mnew, red[x * MT + bm]); }
    workgroupBarrier();
    var lsum = 0.0;
    for (var j = 0u; j < CPT; j = j + 1u) {
      let n = bq + TPR * j;
      let pj = exp(ps_at(n, bm) - mnew);
      ps_set(n, bm, pj);
      lsum = lsum + pj;
    }
    red[lid] = lsum;
    workgroupBarrier();
    if (bq == 0u) {
      var s = 0.0;
      for (var x = 0u; x < TPR; x = x + 1u) { s = s + red[x * MT + bm]; }
      let alpha = exp(row_m[bm] - mnew);
      row_alpha[bm] = alpha;
      row_l[bm] = row_l[bm] * alpha + s;
      row_m[bm] = mnew;
    }
    workgroupBarrier();
    // C: out += P . V.
    let al = vec4<f32>(row_alpha[am], row_alpha[am + MQ], row_alpha[am + 2u * MQ], row_alpha[am + 3u * MQ]);
    o00 = o00 * al.x; o01 = o01 * al.x; o02 = o02 * al.x; o03 = o03 * al.x;
    o10 = o10 * al.y; o11 = o11 * al.y; o12 = o12 * al.y; o13 = o13 * al.y;
    o20 = o20 * al.z; o21 = o21 * al.z; o22 = o22 * al.z; o23 = o23 * al.z;
    o30 = o30 * al.w; o31 = o31 * al.w; o32 = o32 * al.w; o33 = o33 * al.w;
    // Only the rounds with positions of this item (short items: a decode step's splits).
    let nv = min(BN, range.y - c0 + BNV - 1u) / BNV;
    // Round i writes V round i into buffer i % 2, issues round i + 1's loads and computes round i - 1.
    for (var i = 0u; i <= nv; i = i + 1u) {
      if (i < nv) { store_c(&pv, lid, i % 2u); }
      if (i + 1u < nv) { fetch_c(&pv, lid, (i + 1u) * BNV, g); }
      if (i > 0u) {
        let cur = (i - 1u) % 2u;
        let v0 = (i - 1u) * BNV;
        for (var nn = 0u; nn < BNV; nn = nn + 1u) {
          let p = ps[(v0 + nn) * MQ + am];
          let vb = cur * STAGE4 + nn * VS + an;
          let v0c = stage[vb];
          o00 = fma(vec4<f32>(p.x), v0c, o00); o10 = fma(vec4<f32>(p.y), v0c, o10); o20 = fma(vec4<f32>(p.z), v0c, o20); o30 = fma(vec4<f32>(p.w), v0c, o30);
          if (VC > 1u) {
            let v1c = stage[vb + GA_N];
            o01 = fma(vec4<f32>(p.x), v1c, o01); o11 = fma(vec4<f32>(p.y), v1c, o11); o21 = fma(vec4<f32>(p.z), v1c, o21); o31 = fma(vec4<f32>(p.w), v1c, o31);
          }
          if (VC > 2u) {
            let v2c = stage[vb + 2u * GA_N];
            o02 = fma(vec4<f32>(p.x), v2c, o02); o12 = fma(vec4<f32>(p.y), v2c, o12); o22 = fma(vec4<f32>(p.z), v2c, o22); o32 = fma(vec4<f32>(p.w), v2c, o32);
          }
          if (VC > 3u) {
            let v3c = stage[vb + 3u * GA_N];
            o03 = fma(vec4<f32>(p.x), v3c, o03); o13 = fma(vec4<f32>(p.y), v3c, o13); o23 = fma(vec4<f32>(p.z), v3c, o23); o33 = fma(vec4<f32>(p.w), v3c, o33);
          }
        }
      }
      workgroupBarrier();
    }
  }
  workgroupBarrier();

  let ctx = vec4<u32>(b, g, tg, bitcast<u32>(item.w));
  emit_row(ctx, row0, am, an, o00, o01, o02, o03);
  emit_row(ctx, row0, am + MQ, an, o10, o11, o12, o13);
  emit_row(ctx, row0, am + 2u * MQ, an, o20, o21, o22, o23);
  emit_row(ctx, row0, am + 3u * MQ, an, o30, o31, o32, o33);
}

// This invocation's items of the q and K chunk at channel k0 (register staging; K as stored).
fn fetch_a(pq: ptr<function, array<vec4<f32>, QPT>>, pk: ptr<function, array<vec2<u32>, KPT>>, lid: u32, k0: u32, b: u32, g: u32, tg: u32, row0: u32) {
  // @unroll
  for (var i = 0u; i < QPT; i++) {
    (*pq)[i] = fetch_q(lid + i * WG, k0, b, g, tg, row0);
  }
  // @unroll
  for (var i = 0u; i < KPT; i++) {
    let w = lid + i * WG;
    (*pk)[i] = select(vec2<u32>(0u), k_quad_raw(krow[min(w / (DK / 4u), BN - 1u)], g, chunk_word(w, k0), DW), w < BN * (DK / 4u));
  }
}

// Writes the staged q and K chunk at channel k0 into buffer buf, the K words decoded.
fn store_a(pq: ptr<function, array<vec4<f32>, QPT>>, pk: ptr<function, array<vec2<u32>, KPT>>, lid: u32, buf: u32, k0: u32) {
  // @unroll
  for (var i = 0u; i < QPT; i++) {
    let w = lid + i * WG;
    if (w < MT * (DK / 4u)) { qs[buf * MT * KS4 + (w / (DK / 4u)) * KS4 + w % (DK / 4u)] = (*pq)[i]; }
  }
  // @unroll
  for (var i = 0u; i < KPT; i++) {
    let w = lid + i * WG;
    if (w < BN * (DK / 4u)) { stage[buf * STAGE4 + (w / (DK / 4u)) * KS4 + w % (DK / 4u)] = k_quad_decode((*pk)[i], chunk_word(w, k0)); }
  }
}

// This invocation's items of the V round starting at tile position v0 (as stored): position v0 + w / VS, value channels 4 (w % VS) .. + 3.
fn fetch_c(pv: ptr<function, array<vec2<u32>, VPT>>, lid: u32, v0: u32, g: u32) {
  // @unroll
  for (var i = 0u; i < VPT; i++) {
    let w = lid + i * WG;
    let c4 = w % VS;
    (*pv)[i] = select(vec2<u32>(0u), k_quad_raw(krow[min(v0 + w / VS, BN - 1u)], g, 2u * c4, DVW), w < BNV * VS && c4 < DV4);
  }
}

fn store_c(pv: ptr<function, array<vec2<u32>, VPT>>, lid: u32, buf: u32) {
  // @unroll
  for (var i = 0u; i < VPT; i++) {
    let w = lid + i * WG;
    if (w < BNV * VS) { stage[buf * STAGE4 + w] = k_quad_decode((*pv)[i], 2u * (w % VS)); }
  }
}

// Staging loads. Item w of a q chunk: row w / (DK / 4), channels k0 + 4 (w % (DK / 4)) .. + 3 (zeros past the rows or d).
fn fetch_q(w: u32, k0: u32, b: u32, g: u32, tg: u32, row0: u32) -> vec4<f32> {
  let m = w / (DK / 4u);
  let e = chunk_word(w, k0);
  if (m >= MT || row0 + m >= params.m_rows || e >= DW) { return vec4<f32>(0.0); }
  let th = row_token_head(row0 + m, g, tg);
  let qrow = (b * params.s_q + th.x) * params.h_q + th.y;
  return vec4<f32>(load_q(qrow, e), select(vec2<f32>(0.0), load_q(qrow, min(e + 1u, DW - 1u)), e + 1u < DW));
}

// The first word of item w of a chunk at channel k0 (channels 2e .. 2e + 3; e is even).
fn chunk_word(w: u32, k0: u32) -> u32 {
  return k0 / 2u + 2u * (w % (DK / 4u));
}

// ctx = (batch, kv head, token group, slot bits). Writes row m of the tile (its 4 vec4 columns cgn + GA_N * j): out and lse, or the split's scratch.
fn emit_row(ctx: vec4<u32>, row0: u32, m: u32, cgn: u32, c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32>) {
  let b = ctx.x;
  let slot = bitcast<i32>(ctx.w);
  let row_abs = row0 + m;
  if (row_abs >= params.m_rows) { return; }
  let th = row_token_head(row_abs, ctx.y, ctx.z);
  let qrow = (b * params.s_q + th.x) * params.h_q + th.y;
  let rows_per_batch = params.s_q * params.h_q;
  let l = row_l[m];
  let inv = select(0.0, 1.0 / l, l > 0.0);
  let srow = u32(max(slot, 0)) * rows_per_batch + th.x * params.h_q + th.y;
  for (var j = 0u; j < VC; j = j + 1u) {
    let c4 = cgn + GA_N * j;
    if (c4 >= DV4) { break; }
    var v = c0;
    if (j == 1u) { v = c1; }
    if (j == 2u) { v = c2; }
    if (j == 3u) { v = c3; }
    v = v * inv;
    for (var h = 0u; h < 2u; h = h + 1u) {
      let e = 2u * c4 + h;
      if (e >= DVW) { break; }
      let pair = select(v.xy, v.zw, h == 1u);
      if (slot < 0) {
        store_out(qrow, e, pair);
      } else {
        scratch[srow * DV + 2u * e] = pair.x;
        if (2u * e + 1u < DV) { scratch[srow * DV + 2u * e + 1u] = pair.y; }
      }
    }
  }
  if (cgn == 0u) {
    let total = row_m[m] + log(l);
    if (slot < 0) {
      lse[(b * params.h_q + th.y) * params.s_q + th.x] = select(bitcast<f32>(params.inf_bits), total, l > 0.0);
    } else {
      scratch[params.num_slots * rows_per_batch * DV + srow] = select(MASKED, total, l > 0.0);
    }
  }
}
