// Split-KV MLA decode shaped like a GEMM, for GPUs where register tiles pay (the fast path).
// A workgroup takes one work item, one kv head g and MT query rows of that head, and walks the
// item's KV positions BN at a time:
//   A. scores S[MT, BN] = q . k over d, DK channels at a time staged in workgroup memory as f32;
//      invocation (amg, ang) keeps a TMA x 4 register tile (TMA vec4 accumulators);
//   B. online softmax per row, TPR invocations per row, probabilities written over the scores;
//   C. out[MT, DV] += P . V, V staged BNV cache rows at a time; invocation (cgm, cgn) keeps TMC
//      rows x TNC vec4 columns (cgn, cgn + GC_N, ...) of the output in registers.
// Every cache row is read once per workgroup for its scores and once for its values (an L2 hit).
// Holes: WG, MT, BN, DK, BNV, TMA, GA_N, TPR, CPT, TMC, GC_M, GC_N, TNC, STAGE4, D, DV, DW, DVW, DV4
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
var<workgroup> stage: array<vec4<f32>, STAGE4>;  // K chunk [channel][BN/4] in A, V rows [BNV][DV4] in C
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
  var o: array<vec4<f32>, TMC * TNC>;
  for (var i = 0u; i < TMC * TNC; i = i + 1u) { o[i] = vec4<f32>(0.0); }

  for (var c0 = range.x; c0 < range.y; c0 = c0 + BN) {
    for (var i = lid; i < BN; i = i + WG) { krow[i] = select(-1, cache_row(b, tg, c0 + i), c0 + i < range.y); }
    workgroupBarrier();
    // A: scores.
    var acc: array<vec4<f32>, TMA>;
    for (var t = 0u; t < TMA; t = t + 1u) { acc[t] = vec4<f32>(0.0); }
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
        let kv = stage[c * (BN / 4u) + ang];
        for (var t = 0u; t < TMA; t = t + 1u) { acc[t] = fma(vec4<f32>(qs[c * MT + amg * TMA + t]), kv, acc[t]); }
      }
      workgroupBarrier();
    }
    for (var t = 0u; t < TMA; t = t + 1u) {
      for (var j = 0u; j < 4u; j = j + 1u) { ps[(ang * 4u + j) * MT + amg * TMA + t] = acc[t][j] * params.scale; }
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
    for (var t = 0u; t < TMC; t = t + 1u) {
      let a = row_alpha[cgm * TMC + t];
      for (var j = 0u; j < TNC; j = j + 1u) { o[t * TNC + j] = o[t * TNC + j] * a; }
    }
    for (var v0 = 0u; v0 < BN; v0 = v0 + BNV) {
      for (var w = lid; w < BNV * DV4; w = w + WG) {
        let kr = krow[v0 + w / DV4];
        let e = 2u * (w % DV4);
        var v = vec4<f32>(0.0);
        if (kr >= 0) {
          let lo = unpack_pair(load_k_word(u32(kr), g, e), K_TILE_KIND);
          let hi = select(vec2<f32>(0.0), unpack_pair(load_k_word(u32(kr), g, min(e + 1u, DW - 1u)), K_TILE_KIND), e + 1u < DVW);
          v = vec4<f32>(lo, hi);
        }
        stage[w] = v;
      }
      workgroupBarrier();
      for (var nn = 0u; nn < BNV; nn = nn + 1u) {
        var pr: array<f32, TMC>;
        for (var t = 0u; t < TMC; t = t + 1u) { pr[t] = ps[(v0 + nn) * MT + cgm * TMC + t]; }
        for (var j = 0u; j < TNC; j = j + 1u) {
          let c4 = cgn + GC_N * j;
          if (c4 < DV4) {
            let v = stage[nn * DV4 + c4];
            for (var t = 0u; t < TMC; t = t + 1u) { o[t * TNC + j] = fma(vec4<f32>(pr[t]), v, o[t * TNC + j]); }
          }
        }
      }
      workgroupBarrier();
    }
  }
  workgroupBarrier();

  let rows_per_batch = params.s_q * params.h_q;
  for (var t = 0u; t < TMC; t = t + 1u) {
    let m = cgm * TMC + t;
    let row = row0 + m;
    if (row >= params.m_rows) { break; }
    let th = row_token_head(row, g, tg);
    let qrow = (b * params.s_q + th.x) * params.h_q + th.y;
    let l = row_l[m];
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let srow = u32(max(item.w, 0)) * rows_per_batch + th.x * params.h_q + th.y;
    for (var j = 0u; j < TNC; j = j + 1u) {
      let c4 = cgn + GC_N * j;
      if (c4 >= DV4) { break; }
      let v = o[t * TNC + j] * inv;
      for (var h = 0u; h < 2u; h = h + 1u) {
        let e = 2u * c4 + h;
        if (e >= DVW) { break; }
        let pair = select(v.xy, v.zw, h == 1u);
        if (item.w < 0) {
          store_out(qrow, e, pair);
        } else {
          scratch[srow * DV + 2u * e] = pair.x;
          if (2u * e + 1u < DV) { scratch[srow * DV + 2u * e + 1u] = pair.y; }
        }
      }
    }
    if (cgn == 0u) {
      let total = row_m[m] + log(l);
      if (item.w < 0) {
        lse[(b * params.h_q + th.y) * params.s_q + th.x] = select(bitcast<f32>(params.inf_bits), total, l > 0.0);
      } else {
        scratch[params.num_slots * rows_per_batch * DV + srow] = select(MASKED, total, l > 0.0);
      }
    }
  }
}
