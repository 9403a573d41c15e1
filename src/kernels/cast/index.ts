export {
  perTokenCastToFp8Gpu,
  perBlockCastToFp8Gpu,
  planCast,
  autotuneCast,
  castCandidates,
  defaultCastConfig,
  type CastConfig,
  type CastKind,
  type Fp8Tensors,
} from './cast.ts';
