export {
  embedding,
  planEmbedding,
  rmsNorm,
  planRmsNorm,
  rope,
  planRope,
  ropeTableData,
  uploadRopeTable,
  siluMul,
  planSiluMul,
  addInto,
  planAddInto,
  argmax,
  planArgmax,
  type RmsNormOptions,
  type RopeOptions,
} from './nn.ts';
export { embeddingRef, rmsNormRef, ropeRef, siluMulRef, argmaxRef } from './reference.ts';
