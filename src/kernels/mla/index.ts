export {
  flashMlaWithKvcache,
  planFlashMla,
  getMlaMetadata,
  MlaSchedMeta,
  defaultMlaConfig,
  defaultMlaParts,
  mlaCandidates,
  autotuneMla,
  type FlashMlaArgs,
  type MlaConfig,
  type MlaActDtype,
  type PlannedMla,
} from './mla.ts';
export { appendKvcache, planAppendKvcache, type AppendKvArgs } from './append.ts';
export { BlockAllocator, INVALID_BLOCK } from './allocator.ts';
export { scheduleSplits, type MlaSchedule, type MlaWorkItem, type ScheduleOptions } from './schedule.ts';
export { kvLayout, encodeKvRow, decodeKvRow, fp8TileScale, KV_FORMATS, FP8_TILE, type KvFormat, type KvLayout } from './kvformat.ts';
export { mlaReference, attendedRows, type MlaReferenceInput } from './reference.ts';
