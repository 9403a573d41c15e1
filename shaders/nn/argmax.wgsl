// argmax per row of x [rows, n] f32 -> out [rows] i32: the first index of the largest value (as
// torch.argmax), NaN never wins. One workgroup per row: a strided scan, then common/wg_argmax.
// Holes: WG (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

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
  let win = wg_argmax(bv, bi, lid);
  if (lid == 0u && row < params.rows) {
    out[row] = select(i32(win), -1, win == NONE);
  }
}
