// appendKvcache: writes new KV rows into their cache slots (block * blockSize + offset), in the
// cache's format: bf16, f16, or fp8 with per-tile power-of-two scales (bit-identical to kvformat.ts).
import * as d from 'typegpu/data';
import type { GpuContext } from '../../gpu/context.ts';
import { fail } from '../../gpu/errors.ts';
import { expectTensor, uploadTensor, type Tensor } from '../../gpu/tensor.ts';
import { bindGroup, grid, Launch, paramsBuffer } from '../../jit/launch.ts';
import divRn from '../../../shaders/common/div_rn.wgsl';
import fp8Wgsl from '../../../shaders/common/fp8.wgsl';
import loadX from '../../../shaders/common/load_x.wgsl';
import packWgsl from '../../../shaders/mla/pack.wgsl';
import appendWgsl from '../../../shaders/mla/append.wgsl';
import { FP8_TILE, kvLayout, type KvFormat } from './kvformat.ts';

const WHERE = 'appendKvcache';
const WG = 64;
const AppendParams = d.struct({ n: d.u32, h_kv: d.u32, num_rows: d.u32, pitch_x: d.u32, grid_x: d.u32 });

export interface AppendKvArgs {
  kcache: Tensor;
  /** New rows [n, h_kv, d], f32 or bf16. */
  kv: Tensor;
  /** [n] cache slots (block * blockSize + offset): host values are checked against the cache; a Tensor's are not (slots outside the cache are skipped). */
  slots: Int32Array | Tensor;
  /** Needed by the fp8 format (its first headDimV channels are quantised). */
  headDimV?: number;
  kvFormat?: KvFormat;
}

export async function planAppendKvcache(ctx: GpuContext, a: AppendKvArgs): Promise<Launch> {
  const kv = expectTensor(WHERE, 'kv', a.kv, { dtype: ['f32', 'bf16'] });
  if (kv.shape.length !== 3) fail(WHERE, 'kv.shape', 'rank 3 [n, h_kv, d]', kv.shape);
  const [n, hKv, dim] = kv.shape;
  const format = a.kvFormat ?? 'bf16';
  if (format === 'fp8' && a.headDimV === undefined) fail(WHERE, 'headDimV', "given for kvFormat 'fp8' (it splits e4m3 and bf16 channels)", undefined);
  const dv = a.headDimV ?? dim;
  if (!Number.isInteger(dv) || dv < 1 || dv > dim) fail(WHERE, 'headDimV', `an integer in 1..d (${dim})`, dv);
  const layout = kvLayout(WHERE, format, dim, dv);
  const k = expectTensor(WHERE, 'kcache', a.kcache, { dtype: layout.dtype, shape: [null, null, hKv, layout.rowElems] });
  const numRows = k.shape[0] * k.shape[1];
  let slots: Tensor;
  if (a.slots instanceof Int32Array) {
    if (a.slots.length !== n) fail(WHERE, 'slots.length', `n (${n})`, a.slots.length);
    const bad = a.slots.findIndex((v) => v < 0 || v >= numRows);
    if (bad >= 0) fail(WHERE, `slots[${bad}]`, `a cache slot in 0..${numRows - 1}`, a.slots[bad]);
    slots = uploadTensor(ctx, n ? a.slots : [0], [Math.max(1, n)], 'i32', 'slots');
  } else {
    slots = expectTensor(WHERE, 'slots', a.slots, { dtype: 'i32', shape: [n] });
  }
  const chunks = format === 'fp8' ? layout.tiles + Math.ceil((dim - dv) / 128) : Math.ceil(dim / 128);
  const consts = {
    WG,
    D: dim,
    D_NOPE: layout.dNope,
    FP8_TILE,
    FP8_TILES: layout.tiles,
    CHUNKS: chunks,
    K_KIND: { bf16: 0, f16: 1, fp8: 2 }[format],
    IN_BF16: kv.dtype === 'bf16',
    K_PITCH_WORDS: (k.pitch * (format === 'fp8' ? 1 : 2)) / 4,
  };
  const pipeline = await ctx.pipelines.get({
    kernel: 'mla.append',
    config: consts,
    template: { file: 'mla/append.wgsl', code: appendWgsl },
    helpers: [
      { file: 'common/fp8.wgsl', code: fp8Wgsl },
      { file: 'common/div_rn.wgsl', code: divRn },
      { file: 'common/load_x.wgsl', code: loadX },
      { file: 'mla/pack.wgsl', code: packWgsl },
    ],
    consts,
    structs: { Params: AppendParams },
  });
  const g = grid(ctx, Math.ceil((n * hKv * chunks) / WG));
  const params = paramsBuffer(ctx, AppendParams, { n, h_kv: hKv, num_rows: numRows, pitch_x: kv.pitch, grid_x: g[0] });
  const bg = bindGroup(ctx, pipeline, [params, kv.binding(WHERE, 'kv'), slots.binding(WHERE, 'slots'), k.binding(WHERE, 'kcache')]);
  const rowBytes = format === 'fp8' ? layout.rowElems : 2 * dim;
  return new Launch(ctx, [{ pipeline, bindGroup: bg, workgroups: g }], { kernel: 'mla.append', config: consts, bytes: kv.byteLength + n * hKv * rowBytes, flops: 0 });
}

/** Writes kv [n, h_kv, d] into kcache at `slots`; submitted, not awaited. */
export async function appendKvcache(ctx: GpuContext, a: AppendKvArgs): Promise<void> {
  (await planAppendKvcache(ctx, a)).submit();
}
