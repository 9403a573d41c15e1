// argmax per row of x [rows, n] f32 -> out [rows] i32: the first index of the largest value (as
// torch.argmax), NaN never wins. One workgroup per row: a strided scan, then a tree over
// (value, index) pairs that keeps the lower index on ties.
// Holes: WG (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

const NONE: u32 = 0xffffffffu;

// (va, ia) beats (vb, ib): a larger value, or an equal one at a lower index; NONE never beats.
fn beats(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  if (ia == NONE) { return false; }
  if (ib == NONE) { return true; }
  return va > vb || (va == vb && ia < ib);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.grid_x;
  var bv = 0.0;
  var bi = NONE;
  if (row < params.rows) {
    for (var c = lid; c < params.n; c = c + WG) {
      let v = x[row * params.n + c];
      // v == v is false for NaN.
      if (v == v && beats(v, c, bv, bi)) { bv = v; bi = c; }
    }
  }
  best_v[lid] = bv;
  best_i[lid] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s && beats(best_v[lid + s], best_i[lid + s], best_v[lid], best_i[lid])) {
      best_v[lid] = best_v[lid + s];
      best_i[lid] = best_i[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u && row < params.rows) {
    out[row] = select(i32(best_i[0]), -1, best_i[0] == NONE);
  }
}
