// perBlockCastToFp8: w [n, k] (f32 or bf16) -> q [n, k] e4m3 (rows padded to words) and
// scales [ceil(n/128), ceil(k/128)] f32. One workgroup per 128x128 block; invocation lid owns
// column word lid % 32 (4 columns) of rows lid / 32, lid / 32 + WG / 32, ... of the block.
// Holes: WG, SEG (= WG), SG_MIN, IN_BF16 (prelude), Params (typegpu struct).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> q: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;

const ROW_STEP: u32 = WG / 32u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let block = wid.x + wid.y * params.grid_x;
  let valid = block < params.blocks_n * params.groups;
  let bi = block / params.groups;
  let bj = block % params.groups;
  let col0 = bj * 128u + (lid % 32u) * 4u;
  let row0 = bi * 128u + lid / 32u;

  var amax = 0.0;
  if (valid) {
    for (var r = row0; r < min(bi * 128u + 128u, params.m); r = r + ROW_STEP) {
      for (var j = 0u; j < 4u; j = j + 1u) {
        if (col0 + j < params.k) {
          amax = max(amax, abs(load_x(r * params.pitch_x + col0 + j)));
        }
      }
    }
  }
  let block_amax = segment_max(amax, lid);
  if (!valid) { return; }

  let factor = fp8_group_factor(block_amax);
  if (lid == 0u) {
    scales[block] = fp8_group_scale(block_amax);
  }
  if (col0 >= params.k) { return; }
  for (var r = row0; r < min(bi * 128u + 128u, params.m); r = r + ROW_STEP) {
    var vals = vec4<f32>(0.0);
    for (var j = 0u; j < min(params.k - col0, 4u); j = j + 1u) {
      vals[j] = load_x(r * params.pitch_x + col0 + j);
    }
    q[r * params.pitch_q_words + col0 / 4u] = fp8_pack4(vals, params.k - col0, factor);
  }
}
