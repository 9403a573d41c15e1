// routeTopk: router logits [tokens, E] f32 -> topk ids [tokens, K + S] i32 and weights [tokens, K + S] f32.
// One workgroup per token; invocation lid owns experts lid, lid + WG, ... Semantics and
// tie-breaking: src/kernels/moe/reference.ts. Every argmax prefers the lower index on equal values,
// so ties go to the lower expert (and group) index. The S slots after the K picked are the
// always-taken experts E .. E + S - 1 (shared experts held as grouped ones), weight 1.
// Reductions: common/wg_reduce.wgsl, common/wg_argmax.wgsl.
// Holes: WG (a power of two), E, K, S, N_GROUP, TOPK_GROUP, SIGMOID, METHOD (0 greedy, 1 group max,
// 2 group top-2 sum), HAS_BIAS, NORM (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> topk_idx: array<i32>;
@group(0) @binding(4) var<storage, read_write> topk_w: array<f32>;

const GROUP_SIZE: u32 = E / N_GROUP;
// Experts each invocation owns.
const EPT: u32 = (E + WG - 1u) / WG;

var<workgroup> score: array<f32, E>;
var<workgroup> kept: u32;
var<workgroup> gscore: array<f32, N_GROUP>;
var<workgroup> picked: array<u32, K>;
// One expert per invocation (E <= WG): each counts the candidates that beat its own, in one pass
// with no barriers inside, instead of K rounds of a workgroup argmax. Same order, same ties.
const RANKED: bool = EPT == 1u;
var<workgroup> rank_v: array<f32, select(1u, E, RANKED)>;
var<workgroup> rank_live: array<u32, select(1u, E, RANKED)>;

fn choice(e: u32) -> f32 {
  if (HAS_BIAS) { return score[e] + bias[e]; }
  return score[e];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x + wid.y * params.grid_x;
  if (t >= params.tokens) { return; }   // uniform: one token per workgroup
  let row = t * E;

  if (SIGMOID) {
    for (var j = 0u; j < EPT; j = j + 1u) {
      let e = lid + j * WG;
      if (e < E) { score[e] = 1.0 / (1.0 + exp(-logits[row + e])); }
    }
  } else {
    var m = logits[row];
    for (var j = 0u; j < EPT; j = j + 1u) {
      let e = lid + j * WG;
      if (e < E) { m = max(m, logits[row + e]); }
    }
    m = wg_max(m, lid);
    var sum = 0.0;
    for (var j = 0u; j < EPT; j = j + 1u) {
      let e = lid + j * WG;
      if (e < E) {
        score[e] = exp(logits[row + e] - m);
        sum = sum + score[e];
      }
    }
    sum = wg_sum(sum, lid);
    for (var j = 0u; j < EPT; j = j + 1u) {
      let e = lid + j * WG;
      if (e < E) { score[e] = score[e] / sum; }
    }
  }
  workgroupBarrier();

  // Invocation g < N_GROUP scores group g; then invocation 0 picks the groups (bit g of `kept`).
  if (METHOD != 0u) {
    for (var g = lid; g < N_GROUP; g = g + WG) {
      let base = g * GROUP_SIZE;
      var b1 = base;
      for (var e = base + 1u; e < base + GROUP_SIZE; e = e + 1u) {
        if (choice(e) > choice(b1)) { b1 = e; }
      }
      gscore[g] = choice(b1);
      if (METHOD == 2u) {
        var b2 = select(base, base + 1u, b1 == base);
        for (var e = b2 + 1u; e < base + GROUP_SIZE; e = e + 1u) {
          if (e != b1 && choice(e) > choice(b2)) { b2 = e; }
        }
        gscore[g] = gscore[g] + choice(b2);
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    var mask = select(0u, 0xffffffffu, METHOD == 0u);
    for (var j = 0u; j < select(TOPK_GROUP, 0u, METHOD == 0u); j = j + 1u) {
      var best = N_GROUP;
      for (var g = 0u; g < N_GROUP; g = g + 1u) {
        if ((mask & (1u << g)) == 0u && (best == N_GROUP || gscore[g] > gscore[best])) { best = g; }
      }
      mask = mask | (1u << best);
    }
    kept = mask;
  }
  let keep = workgroupUniformLoad(&kept);

  if (RANKED) {
    let live = lid < E && (keep & (1u << (lid / GROUP_SIZE))) != 0u;
    var v = 0.0;
    if (lid < E) {
      v = choice(lid);
      rank_v[lid] = v;
      rank_live[lid] = select(0u, 1u, live);
    }
    workgroupBarrier();
    if (live) {
      var rank = 0u;
      for (var j = 0u; j < E; j = j + 1u) {
        if (rank_live[j] != 0u && beats(rank_v[j], j, v, lid)) { rank = rank + 1u; }
      }
      if (rank < K) { picked[rank] = lid; }
    }
    workgroupBarrier();
  }
  // Else K rounds: each invocation offers its best free expert, the workgroup takes the best offer.
  var taken = 0u;   // bit j: this invocation's expert lid + j * WG is taken (EPT <= 32)
  for (var r = 0u; r < select(K, 0u, RANKED); r = r + 1u) {
    var bv = 0.0;
    var bi = NONE;
    for (var j = 0u; j < EPT; j = j + 1u) {
      let e = lid + j * WG;
      if (e < E && (keep & (1u << (e / GROUP_SIZE))) != 0u && (taken & (1u << j)) == 0u && beats(choice(e), e, bv, bi)) {
        bv = choice(e);
        bi = e;
      }
    }
    let win = wg_argmax(bv, bi, lid);
    if (win != NONE && win % WG == lid) { taken = taken | (1u << (win / WG)); }
    if (lid == 0u) { picked[r] = win; }
  }

  if (lid == 0u) {
    var wsum = 0.0;
    for (var r = 0u; r < K; r = r + 1u) { wsum = wsum + score[picked[r]]; }
    let denom = select(1.0, wsum + 1e-20f, NORM);
    for (var r = 0u; r < K; r = r + 1u) {
      topk_idx[t * (K + S) + r] = i32(picked[r]);
      topk_w[t * (K + S) + r] = score[picked[r]] / denom * params.scale;
    }
    for (var r = 0u; r < S; r = r + 1u) {
      topk_idx[t * (K + S) + K + r] = i32(E + r);
      topk_w[t * (K + S) + K + r] = 1.0;
    }
  }
}
