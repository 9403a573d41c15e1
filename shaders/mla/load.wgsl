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
    w = e4m3_bf16_bits(bytes, scale) | (e4m3_bf16_bits(bytes >> 8u, scale) << 16u);
  } else {
    w = kword(base + (D_NOPE + 4u * FP8_TILES) / 4u + e - D_NOPE / 2u);
  }
  // The padding half of an odd-length row is never part of a dot product.
  return select(w, w & 0xffffu, 2u * e + 1u >= D);
}


// Channels 2e .. 2e + 3 (e even) of cache row kr, kv head g, as stored (the tiled kernel stages
// these, decoding them only when writing workgroup memory): two bf16/f16 words (the second only
// below `words`; halves past D zeroed), or in the FP8 cache's e4m3 part the word of their 4 bytes
// and their tile's scale. Zeros for kr < 0 or e past `words`.
fn k_quad_raw(kr: i32, g: u32, e: u32, words: u32) -> vec2<u32> {
  if (kr < 0 || e >= words) { return vec2<u32>(0u); }
  let base = (u32(kr) * params.h_kv + g) * K_PITCH_WORDS;
  if (K_KIND == 2u && 2u * e < D_NOPE) {
    return vec2<u32>(kword(base + e / 2u), kword(base + (D_NOPE + 4u * ((2u * e) / FP8_TILE)) / 4u));
  }
  let at = select(base + e, base + (D_NOPE + 4u * FP8_TILES) / 4u + e - D_NOPE / 2u, K_KIND == 2u);
  let w0 = kword(at);
  let w1 = kword(at + select(0u, 1u, e + 1u < words));
  return vec2<u32>(select(w0, w0 & 0xffffu, 2u * e + 1u >= D), select(0u, select(w1, w1 & 0xffffu, 2u * e + 3u >= D), e + 1u < words));
}

// k_quad_raw's words for channels 2e .. 2e + 3 as f32 (FP8: e4m3 times the scale, rounded to bf16 as the reference dequantises).
fn k_quad_decode(raw: vec2<u32>, e: u32) -> vec4<f32> {
  if (K_KIND == 2u && 2u * e < D_NOPE) {
    // All 4 bytes at once, branch-free (a third of the FP8 kernel's time went to decoding them one by one).
    return bf16_round4(e4m3x4_decode(raw.x) * bitcast<f32>(raw.y));
  }
  return vec4<f32>(unpack_pair(raw.x, K_TILE_KIND), unpack_pair(raw.y, K_TILE_KIND));
}

// An e4m3 byte (the low 8 bits of v) times its scale, as bf16 bits.
fn e4m3_bf16_bits(v: u32, scale: f32) -> u32 {
  return bf16_bits(e4m3_decode(v & 0xffu) * scale);
}
