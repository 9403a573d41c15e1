// Split-KV MLA decode shaped like a GEMM, for GPUs where register tiles pay (the fast path).
// A workgroup takes one work item, one kv head g and MT query rows of that head, and walks the
// item's KV positions BN at a time:
//   A. scores S[MT, BN] = q . k over d, DK channels at a time staged in workgroup memory as f32;
//      invocation (amg, ang) keeps a 2 x 4 register tile (rows amg*2, +1; columns ang*4 .. +3);
//   B. online softmax per row, TPR invocations per row, probabilities written over the scores;
//   C. out[MT, DV] += P . V, V staged BNV cache rows at a time (rows padded to VS vec4s with zeros);
//      invocation (cgm, cgn) keeps 4 rows x 4 vec4 columns (cgn + GC_N * j) of the output.
// Register tiles are named variables, not arrays: a private array indexed in a loop may live in
// local memory, which cost the first kernels most of their speed.
// Every cache row is read once per workgroup for its scores and once for its values (an L2 hit).
// Holes: WG, MT, BN, DK, BNV, GA_N, TPR, CPT, GC_N, VS, STAGE4, D, DV, DW, DVW, DV4
// plus the io consts of load.wgsl / store_out.wgsl (prelude), Params (typegpu struct, as decode.wgsl).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<u32>;
@group(0) @binding(2) var<storage, read> kcache: array<u32>;
@group(0) @binding(3) var<storage, read> rows_a: array<i32>;
@group(0) @binding(4) var<storage, read> rows_b: array<i32>;
@group(0) @binding(5) var<storage, read> work: array<vec4<i32>>;
@group(0) @binding(6) var<storage, read_write> out: array<u32>;
@group(0) @binding(7) var<storage, read_write> lse: array<f32>;
@group(0) @binding(8) var<storage, read_write> scratch: array<f32>;

const MASKED: f32 = -3.0e38;
const START: f32 = -1.0e38;

var<workgroup> qs: array<f32, DK * MT>;          // q chunk, [channel][row]
var<workgroup> stage: array<vec4<f32>, STAGE4>;  // K chunk [channel][BN/4] in A, V rows [BNV][VS] in C
var<workgroup> ps: array<f32, BN * MT>;          // scores, then probabilities, [position][row]
var<workgroup> red: array<f32, WG>;
var<workgroup> row_m: array<f32, MT>;
var<workgroup> row_l: array<f32, MT>;
var<workgroup> row_alpha: array<f32, MT>;
var<workgroup> krow: array<i32, BN>;
var<workgroup> span: vec2<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let item = work[wid.x];
  if (item.x < 0) { return; } // past the schedule's items (a replayable schedule's fixed grid)
  let b = u32(item.x);
  let g = wid.y % params.h_kv;
  let mtile = (wid.y / params.h_kv) % params.mtiles;
  let tg = wid.y / (params.h_kv * params.mtiles);
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
  let ang = lid % GA_N;
  let amg = lid / GA_N;
  let bm = lid % MT;
  let bq = lid / MT;
  let cgn = lid % GC_N;
  let cgm = lid / GC_N;
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
    // A: scores.
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < D; k0 = k0 + DK) {
      for (var w = lid; w < MT * (DK / 2u); w = w + WG) {
        let m = w / (DK / 2u);
        let c = 2u * (w % (DK / 2u));
        let e = k0 / 2u + c / 2u;
        var v = vec2<f32>(0.0);
        if (row0 + m < params.m_rows && e < DW) {
          let th = row_token_head(row0 + m, g, tg);
          v = load_q((b * params.s_q + th.x) * params.h_q + th.y, e);
        }
        qs[c * MT + m] = v.x;
        qs[(c + 1u) * MT + m] = v.y;
      }
      for (var w = lid; w < BN * (DK / 2u); w = w + WG) {
        let n = w / (DK / 2u);
        let c = 2u * (w % (DK / 2u));
        let e = k0 / 2u + c / 2u;
        let kr = krow[n];
        var v = vec2<f32>(0.0);
        if (kr >= 0 && e < DW) { v = unpack_pair(load_k_word(u32(kr), g, e), K_TILE_KIND); }
        stage[c * (BN / 4u) + n / 4u][n % 4u] = v.x;
        stage[(c + 1u) * (BN / 4u) + n / 4u][n % 4u] = v.y;
      }
      workgroupBarrier();
      for (var c = 0u; c < DK; c = c + 1u) {
        let kv = stage[c * GA_N + ang];
        let qa = c * MT + amg * 2u;
        a0 = fma(vec4<f32>(qs[qa]), kv, a0);
        a1 = fma(vec4<f32>(qs[qa + 1u]), kv, a1);
      }
      workgroupBarrier();
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
      ps[(ang * 4u + j) * MT + amg * 2u] = a0[j] * params.scale;
      ps[(ang * 4u + j) * MT + amg * 2u + 1u] = a1[j] * params.scale;
    }
    workgroupBarrier();
    // B: online softmax of row bm over its columns bq, bq + TPR, ...
    var lmax = MASKED;
    for (var j = 0u; j < CPT; j = j + 1u) {
      let n = bq + TPR * j;
      let i = n * MT + bm;
      let s = select(MASKED, ps[i], krow[n] >= 0 && i32(c0 + n) < limit);
      ps[i] = s;
      lmax = max(lmax, s);
    }
    red[lid] = lmax;
    workgroupBarrier();
    var mnew = row_m[bm];
    for (var x = 0u; x < TPR; x = x + 1u) { mnew = max(mnew, red[x * MT + bm]); }
    workgroupBarrier();
    var lsum = 0.0;
    for (var j = 0u; j < CPT; j = j + 1u) {
      let i = (bq + TPR * j) * MT + bm;
      let pj = exp(ps[i] - mnew);
      ps[i] = pj;
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
    let al = vec4<f32>(row_alpha[cgm * 4u], row_alpha[cgm * 4u + 1u], row_alpha[cgm * 4u + 2u], row_alpha[cgm * 4u + 3u]);
    o00 = o00 * al.x; o01 = o01 * al.x; o02 = o02 * al.x; o03 = o03 * al.x;
    o10 = o10 * al.y; o11 = o11 * al.y; o12 = o12 * al.y; o13 = o13 * al.y;
    o20 = o20 * al.z; o21 = o21 * al.z; o22 = o22 * al.z; o23 = o23 * al.z;
    o30 = o30 * al.w; o31 = o31 * al.w; o32 = o32 * al.w; o33 = o33 * al.w;
    for (var v0 = 0u; v0 < BN; v0 = v0 + BNV) {
      for (var w = lid; w < BNV * VS; w = w + WG) {
        let c4 = w % VS;
        let kr = krow[v0 + w / VS];
        let e = 2u * c4;
        var v = vec4<f32>(0.0);
        if (kr >= 0 && c4 < DV4) {
          let lo = unpack_pair(load_k_word(u32(kr), g, e), K_TILE_KIND);
          let hi = select(vec2<f32>(0.0), unpack_pair(load_k_word(u32(kr), g, min(e + 1u, DW - 1u)), K_TILE_KIND), e + 1u < DVW);
          v = vec4<f32>(lo, hi);
        }
        stage[w] = v;
      }
      workgroupBarrier();
      for (var nn = 0u; nn < BNV; nn = nn + 1u) {
        let pi = (v0 + nn) * MT + cgm * 4u;
        let p = vec4<f32>(ps[pi], ps[pi + 1u], ps[pi + 2u], ps[pi + 3u]);
        let vb = nn * VS + cgn;
        let v0c = stage[vb];
        let v1c = stage[vb + GC_N];
        let v2c = stage[vb + 2u * GC_N];
        let v3c = stage[vb + 3u * GC_N];
        o00 = fma(vec4<f32>(p.x), v0c, o00); o01 = fma(vec4<f32>(p.x), v1c, o01); o02 = fma(vec4<f32>(p.x), v2c, o02); o03 = fma(vec4<f32>(p.x), v3c, o03);
        o10 = fma(vec4<f32>(p.y), v0c, o10); o11 = fma(vec4<f32>(p.y), v1c, o11); o12 = fma(vec4<f32>(p.y), v2c, o12); o13 = fma(vec4<f32>(p.y), v3c, o13);
        o20 = fma(vec4<f32>(p.z), v0c, o20); o21 = fma(vec4<f32>(p.z), v1c, o21); o22 = fma(vec4<f32>(p.z), v2c, o22); o23 = fma(vec4<f32>(p.z), v3c, o23);
        o30 = fma(vec4<f32>(p.w), v0c, o30); o31 = fma(vec4<f32>(p.w), v1c, o31); o32 = fma(vec4<f32>(p.w), v2c, o32); o33 = fma(vec4<f32>(p.w), v3c, o33);
      }
      workgroupBarrier();
    }
  }
  workgroupBarrier();

  let ctx = vec4<u32>(b, g, tg, bitcast<u32>(item.w));
  emit_row(ctx, row0, cgm * 4u, cgn, o00, o01, o02, o03);
  emit_row(ctx, row0, cgm * 4u + 1u, cgn, o10, o11, o12, o13);
  emit_row(ctx, row0, cgm * 4u + 2u, cgn, o20, o21, o22, o23);
  emit_row(ctx, row0, cgm * 4u + 3u, cgn, o30, o31, o32, o33);
}

// ctx = (batch, kv head, token group, slot bits). Writes row m of the tile (its 4 vec4 columns cgn + GC_N * j): out and lse, or the split's scratch.
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
  for (var j = 0u; j < 4u; j = j + 1u) {
    let c4 = cgn + GC_N * j;
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
