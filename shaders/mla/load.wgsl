// Operand loads of the decode kernels (q rows, K words in any cache format; kword() from kcache_one.wgsl or kcache_split.wgsl).

// Channels 2e, 2e+1 of q row `row` (pitch Q_PITCH elements); a channel past D reads 0.
fn load_q(row: u32, e: u32) -> vec2<f32> {
  var v: vec2<f32>;
  if (Q_KIND == 0u) {
    let i = row * Q_PITCH + 2u * e;
    let second = 2u * e + 1u < D;
    v = vec2<f32>(bitcast<f32>(q[i]), select(0.0, bitcast<f32>(q[i + select(0u, 1u, second)]), second));
  } else {
    v = unpack_pair(q[(row * Q_PITCH) / 2u + e], Q_KIND);
  }
  return select(v, vec2<f32>(v.x, 0.0), 2u * e + 1u >= D);
}

// Word e of the K tile row for cache row `krow`, kv head g: channels 2e, 2e+1 as a bf16 (or f16) pair.
fn load_k_word(krow: u32, g: u32, e: u32) -> u32 {
  let base = (krow * params.h_kv + g) * K_PITCH_WORDS;
  var w: u32;
  if (K_KIND != 2u) {
    w = kword(base + e);
  } else if (2u * e < D_NOPE) {
    // Two e4m3 bytes of the same word, times their tile's f32 scale, rounded to bf16.
    let bytes = kword(base + e / 2u) >> (16u * (e & 1u));
    let scale = bitcast<f32>(kword(base + (D_NOPE + 4u * ((2u * e) / FP8_TILE)) / 4u));
    w = bf16_bits(e4m3_decode(bytes & 0xffu) * scale) | (bf16_bits(e4m3_decode((bytes >> 8u) & 0xffu) * scale) << 16u);
  } else {
    w = kword(base + (D_NOPE + 4u * FP8_TILES) / 4u + e - D_NOPE / 2u);
  }
  // The padding half of an odd-length row is never part of a dot product.
  return select(w, w & 0xffffu, 2u * e + 1u >= D);
}

