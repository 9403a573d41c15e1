// argmax per row of x [rows, n] f32 -> out [rows] i32: the first index of the largest value (as
// torch.argmax), NaN never wins, -1 for a row of NaN; with FLAG_NONFINITE, -1 for a row holding any
// NaN or Inf (a greedy decode step's logits: no token is right then). A row is cut into PARTS
// contiguous parts, one workgroup each: a strided scan, then common/wg_argmax. With PARTS > 1 each
// part's (value, index) goes to a workspace (TO_PARTS; index BAD for a part that saw NaN or Inf) and
// a second dispatch of PARTS = 1 reduces a row's parts (FROM_PARTS, params.n = the parts): a logits
// row (~100k values) scanned by one workgroup is a long chain of serial loads, and a greedy decode
// step waits on it.
// Holes: WG, PARTS, FROM_PARTS, TO_PARTS, FLAG_NONFINITE (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
// x's bits, or (value bits, index) pairs.
@group(0) @binding(1) var<storage, read> src: array<u32>;
// out (i32 bits), or (value bits, index) pairs.
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

const BAD: u32 = 0xfffffffeu;

// Set by any invocation that saw NaN or Inf (workgroup memory starts zeroed).
var<workgroup> saw_bad: atomic<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let flat = wid.x + wid.y * params.grid_x;
  let row = flat / PARTS;
  let chunk = (params.n + PARTS - 1u) / PARTS;
  let lo = (flat % PARTS) * chunk;
  let hi = min(params.n, lo + chunk);
  var bv = 0.0;
  var bi = NONE;
  if (row < params.rows) {
    for (var c = lo + lid; c < hi; c = c + WG) {
      let at = row * params.n + c;
      var v: f32;
      var i = c;
      var bits: u32;
      if (FROM_PARTS) {
        bits = src[2u * at];
        i = src[2u * at + 1u];
      } else {
        bits = src[at];
      }
      v = bitcast<f32>(bits);
      // Exponent bits all set: NaN or Inf, told from the bits (no float compare to fold away).
      if (FLAG_NONFINITE && (i == BAD || (bits & 0x7f800000u) == 0x7f800000u)) {
        atomicOr(&saw_bad, 1u);
      } else if (v == v && i != BAD && beats(v, i, bv, bi)) {
        // v == v is false for NaN.
        bv = v;
        bi = i;
      }
    }
  }
  let win = wg_argmax(bv, bi, lid);
  // Every atomicOr came before wg_argmax's barriers.
  let bad = FLAG_NONFINITE && atomicLoad(&saw_bad) != 0u;
  if (lid == 0u && row < params.rows) {
    if (TO_PARTS) {
      dst[2u * flat] = bitcast<u32>(wg_arg_v[0]);
      dst[2u * flat + 1u] = select(win, BAD, bad);
    } else {
      dst[row] = bitcast<u32>(select(i32(win), -1, win == NONE || bad));
    }
  }
}
