export { encodeE4M3, decodeE4M3, encodeE5M2, decodeE5M2, E4M3_MAX, f32ToBits, bitsToF32 } from './fp8.ts';
export { encodeBF16, decodeBF16, encodeF16, decodeF16 } from './half.ts';
export { perTokenCastToFp8, perBlockCastToFp8, FP8_GROUP, type Fp8Cast } from './casts.ts';
