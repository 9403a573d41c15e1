// Small-m GEMM with A held in registers (decode: m = 1..4 rows per group, e4m3 B, 16-byte loads).
// small_m.wgsl reads A again for every NC columns: with f32 activations that is 64 bytes through L1
// per 16 bytes of B, which is what bounds it (docs/BENCHMARKS.md, v6). Here a team of T lanes spans
// all of k: lane l holds the 16-value chunks l, l + T, ... (CPL of them) of the MR rows of A,
// decoded once, and the team walks RW rows of B (output columns) R at a time, so A is read once
// per RW columns; the grid's teams take the steps' columns in turn, one sweep over B. A step's R * CPL loads are all issued first, the next step's before this step's
// sums are shuffled (xor, within SGM lanes: subgroups, when the JIT has them) and parked in
// workgroup memory. No barrier until the team's columns are done: then the T / SGM parts of each
// sum are added by a fixed tree (the same bits every run) and stored. As in small_m.wgsl, each
// 16-value chunk is summed unscaled and scaled once (a chunk never straddles a 128-wide k slice),
// and grid z names the region through mode_z.
// Holes: WG, T, CPL, MR, R, RW, VALS (= MR * R), SGM, A_KIND, A_WORDS, OUT_KIND, C_KIND (prelude), Params.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

const TEAMS = WG / T;
// Parts of each sum per team once the shuffles are done; one slot per part of every team.
const PARTS = T / SGM;
const SLOTS = WG / SGM;
var<workgroup> red: array<f32, MR * RW * SLOTS>;

// One step's loads: this lane's CPL chunks of R columns from `col`. Columns past n read the last
// column again and chunks past k the last chunk; their sums are never stored.
fn load_step(g: u32, col: u32, lane: u32, kc: u32) -> array<vec4<u32>, R * CPL> {
  var bw: array<vec4<u32>, R * CPL>;
  // @unroll
  for (var j = 0u; j < R; j++) {
    // @unroll
    for (var i = 0u; i < CPL; i++) {
      bw[j * CPL + i] = load_b16(g * params.n + min(col + j, params.n - 1u), min(lane + i * T, kc - 1u) * 4u);
    }
  }
  return bw;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let team = lid / T;
  let region = workgroup_region(wid.z, lid);
  // A workgroup with no region has no rows: it loads and stores nothing.
  let z = select(region.x, 0u, region.x == NO_REGION);
  let rows = region.y;
  let g = u32(mode_group(z, 0u));
  let r_base = z * params.m;
  let kc = params.k / 16u;
  // Step i of team tg takes columns (i * TT + tg) * R ..: at each step the grid's teams read one
  // band of B's rows together, as one sweep (a block of columns per team had each team read its own
  // region: DRAM pages opened all over B).
  let tt = nwg.x * TEAMS;
  let tg = wid.x * TEAMS + team;

  for (var r0 = 0u; r0 < rows; r0 += MR) {
    var bw = load_step(g, tg * R, lane, kc);
    // This lane's chunks of A, decoded and unscaled, with their 1x128 scales. Chunks past k
    // re-read the last one; their products are never summed.
    var av: array<vec4<f32>, MR * CPL * 4>;
    var sav: array<f32, MR * CPL>;
    // @unroll
    for (var i = 0u; i < CPL; i++) {
      let c = min(lane + i * T, kc - 1u);
      // @unroll
      for (var r = 0u; r < MR; r++) {
        // Rows past the count read the last row again; their sums are never stored.
        let ra = r_base + min(r0 + r, rows - 1u);
        // @unroll
        for (var q = 0u; q < 4; q++) {
          av[(r * CPL + i) * 4u + q] = load_a_chunk(ra, c * 4u + q);
        }
        sav[r * CPL + i] = scale_a(ra, c / 8u);
      }
    }
    for (var s = 0u; s < RW; s += R) {
      // Explicitly zeroed: some compilers hoist a loop-body `var` and keep its old value.
      var acc = array<f32, VALS>();
      // @unroll
      for (var j = 0u; j < R; j++) {
        let col = min(((s / R) * tt + tg) * R + j, params.n - 1u);
        // @unroll
        for (var i = 0u; i < CPL; i++) {
          let c = lane + i * T;
          let w = bw[j * CPL + i];
          let nan = e4m3_has_nan(w);
          let sb = scale_b(g, col, min(c, kc - 1u) / 8u);
          var p = array<f32, MR>();
          // @unroll
          for (var q = 0u; q < 4; q++) {
            let bq = e4m3x4_checked(w[q], nan);
            // @unroll
            for (var r = 0u; r < MR; r++) {
              p[r] += dot(av[(r * CPL + i) * 4u + q], bq);
            }
          }
          // @unroll
          for (var r = 0u; r < MR; r++) {
            acc[r * R + j] = select(acc[r * R + j], fma(p[r], sav[r * CPL + i] * sb, acc[r * R + j]), c < kc);
          }
        }
      }
      if (s + R < RW) { bw = load_step(g, ((s / R + 1u) * tt + tg) * R, lane, kc); }
      // Every lane of an SGM-lane segment ends with the segment's sum; one lane parks it.
      // @unroll
      for (var v = 0u; v < VALS; v++) {
        var x = acc[v];
        for (var h = 1u; h < SGM; h = h << 1u) {
          x += shuffle_xor(x, h);
        }
        if (lid % SGM == 0u) { red[((v / R) * RW + s + v % R) * SLOTS + lid / SGM] = x; }
      }
    }
    // Add up each team's PARTS parts: a fixed tree, spread over the workgroup.
    for (var h = PARTS / 2u; h > 0u; h = h >> 1u) {
      workgroupBarrier();
      for (var e = lid; e < MR * RW * TEAMS * h; e += WG) {
        let at = (e / (TEAMS * h)) * SLOTS + ((e / h) % TEAMS) * PARTS + e % h;
        red[at] += red[at + h];
      }
    }
    workgroupBarrier();
    for (var e = lid; e < MR * (RW / 2u) * TEAMS; e += WG) {
      let q = 2u * (e % (RW / 2u));
      let tm = (e / (RW / 2u)) % TEAMS;
      let r = e / ((RW / 2u) * TEAMS);
      let col = ((q / R) * tt + wid.x * TEAMS + tm) * R + q % R;
      let at = (r * RW + q) * SLOTS + tm * PARTS;
      if (r0 + r < rows && col < params.n) { store_pair(r_base + r0 + r, col, vec2<f32>(red[at], red[at + SLOTS]), false); }
    }
    // The next rows of A reuse the slots.
    workgroupBarrier();
  }
}
