// routeTopk: router logits [tokens, E] f32 -> topk ids [tokens, K] i32 and weights [tokens, K] f32,
// one invocation per token (E and K are small: DeepSeek-V3 has 256 experts, 8 per token).
// Semantics and tie-breaking: src/kernels/moe/reference.ts. Candidates are scanned in index order
// and replaced only by a strictly better one, so ties go to the lower index.
// Holes: WG, E, K, N_GROUP, TOPK_GROUP, SIGMOID, METHOD (0 greedy, 1 group max, 2 group top-2 sum),
// HAS_BIAS, NORM (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> topk_idx: array<i32>;
@group(0) @binding(4) var<storage, read_write> topk_w: array<f32>;

const GROUP_SIZE: u32 = E / N_GROUP;

fn choice(s: f32, e: u32) -> f32 {
  if (HAS_BIAS) { return s + bias[e]; }
  return s;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (t >= params.tokens) { return; }
  let row = t * E;

  var s: array<f32, E>;
  if (SIGMOID) {
    for (var e = 0u; e < E; e = e + 1u) { s[e] = 1.0 / (1.0 + exp(-logits[row + e])); }
  } else {
    var m = logits[row];
    for (var e = 1u; e < E; e = e + 1u) { m = max(m, logits[row + e]); }
    var sum = 0.0;
    for (var e = 0u; e < E; e = e + 1u) {
      s[e] = exp(logits[row + e] - m);
      sum = sum + s[e];
    }
    for (var e = 0u; e < E; e = e + 1u) { s[e] = s[e] / sum; }
  }

  // Bit g set: group g is kept.
  var kept = 0xffffffffu;
  if (METHOD != 0u) {
    var gscore: array<f32, N_GROUP>;
    for (var g = 0u; g < N_GROUP; g = g + 1u) {
      var b1 = 0u;
      for (var i = 1u; i < GROUP_SIZE; i = i + 1u) {
        let e = g * GROUP_SIZE + i;
        if (choice(s[e], e) > choice(s[g * GROUP_SIZE + b1], g * GROUP_SIZE + b1)) { b1 = i; }
      }
      gscore[g] = choice(s[g * GROUP_SIZE + b1], g * GROUP_SIZE + b1);
      if (METHOD == 2u) {
        var b2 = select(0u, 1u, b1 == 0u);
        for (var i = b2 + 1u; i < GROUP_SIZE; i = i + 1u) {
          let e = g * GROUP_SIZE + i;
          if (i != b1 && choice(s[e], e) > choice(s[g * GROUP_SIZE + b2], g * GROUP_SIZE + b2)) { b2 = i; }
        }
        gscore[g] = gscore[g] + choice(s[g * GROUP_SIZE + b2], g * GROUP_SIZE + b2);
      }
    }
    kept = 0u;
    for (var j = 0u; j < TOPK_GROUP; j = j + 1u) {
      var best = N_GROUP;
      for (var g = 0u; g < N_GROUP; g = g + 1u) {
        if ((kept & (1u << g)) == 0u && (best == N_GROUP || gscore[g] > gscore[best])) { best = g; }
      }
      kept = kept | (1u << best);
    }
  }

  var taken: array<u32, (E + 31u) / 32u>;
  var ids: array<u32, K>;
  var wsum = 0.0;
  for (var j = 0u; j < K; j = j + 1u) {
    var best = E;
    var best_c = 0.0;
    for (var e = 0u; e < E; e = e + 1u) {
      let free = (kept & (1u << (e / GROUP_SIZE))) != 0u && (taken[e / 32u] & (1u << (e % 32u))) == 0u;
      let c = choice(s[e], e);
      if (free && (best == E || c > best_c)) {
        best = e;
        best_c = c;
      }
    }
    taken[best / 32u] = taken[best / 32u] | (1u << (best % 32u));
    ids[j] = best;
    wsum = wsum + s[best];
  }
  let denom = select(1.0, wsum + 1e-20f, NORM);
  for (var j = 0u; j < K; j = j + 1u) {
    topk_idx[t * K + j] = i32(ids[j]);
    topk_w[t * K + j] = s[ids[j]] / denom * params.scale;
  }
}
