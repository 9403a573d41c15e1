// `deepwgsl bench --mla`: FlashMLA's performance cases (b=128, s_q 1 and 2, causal on/off, varlen
// mean seqlen 4096..32768, h_q=128, h_kv=1, d=576, dv=512) plus h_q 16/32/64 and the FP8 cache, each
// beside the ceiling that bounds it (f32 FMA rate or streaming bandwidth, whichever takes longer).
// bf16 s_q=1 non-causal cases also time the unfused baseline (src/kernels/mla/unfused.ts: gather, QK^T
// GEMM, softmax, P.V GEMM through our own kernels) in the same run, to show what fusion buys.
// On hardware also V2-Lite's decode-step call at batch 1 (h_q=16, f32 q, replayable schedule): latency,
// timed as a step pays it (calls chained in one pass), with its decode and combine dispatches apart.
// Upstream's mean 16384/32768 caches exceed one storage binding: the kernel binds them as several windows.
import type { GpuContext } from '../gpu/context.ts';
import { createTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { timeLaunch } from '../jit/timing.ts';
import { Launch, type Dispatch } from '../jit/launch.ts';
import { encodeKvRow, kvLayout, type KvFormat } from '../kernels/mla/kvformat.ts';
import { autotuneMla, getMlaMetadata, planFlashMla, type FlashMlaArgs, type MlaConfig } from '../kernels/mla/mla.ts';
import { envVar } from '../gpu/env.ts';
import { planUnfusedMla } from '../kernels/mla/unfused.ts';
import { decodeMlaConfig } from '../model/decode.ts';
import { DeepwgslError } from '../gpu/errors.ts';
import type { BenchOptions, BenchRow, BenchSuite } from './suites.ts';
import { raiseClocks } from './ceilings.ts';

interface MlaBenchCase {
  b: number;
  sQ: number;
  hQ: number;
  meanSeqlen: number;
  causal: boolean;
  format: KvFormat;
  /** A decode step's call (the model runtime's): one sequence of exactly meanSeqlen, f32 q, a replayable schedule for up to DECODE_MAX positions. */
  decode?: boolean;
}

const D = 576;
const DECODE_MAX = 4096;
const DV = 512;
const BLOCK = 64;

/** A deterministic normal-ish generator (bench inputs need no fresh seed). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

export function mlaBenchCases(quick: boolean, software: boolean): MlaBenchCase[] {
  if (software) return [{ b: 2, sQ: 1, hQ: 16, meanSeqlen: 256, causal: false, format: 'bf16' }, { b: 2, sQ: 2, hQ: 16, meanSeqlen: 256, causal: true, format: 'fp8' }];
  const b = 128;
  // V2-Lite's decode-step shape (h_q=16) at batch 1: latency, not throughput.
  const cases: MlaBenchCase[] = [64, 1024, 4096].map((n) => ({ b: 1, sQ: 1, hQ: 16, meanSeqlen: n, causal: false, format: 'bf16', decode: true }));
  cases.push({ b: 1, sQ: 1, hQ: 16, meanSeqlen: 64, causal: false, format: 'fp8', decode: true });
  if (quick) {
    cases.push({ b, sQ: 1, hQ: 128, meanSeqlen: 4096, causal: false, format: 'bf16' });
    cases.push({ b, sQ: 1, hQ: 16, meanSeqlen: 4096, causal: false, format: 'bf16' });
    cases.push({ b, sQ: 1, hQ: 16, meanSeqlen: 4096, causal: false, format: 'fp8' });
    return cases;
  }
  for (const causal of [false, true]) for (const sQ of [1, 2]) for (const s of [4096, 8192, 16384, 32768]) cases.push({ b, sQ, hQ: 128, meanSeqlen: s, causal, format: 'bf16' });
  for (const hQ of [16, 32, 64]) cases.push({ b, sQ: 1, hQ, meanSeqlen: 8192, causal: false, format: 'bf16' });
  for (const hQ of [16, 128]) cases.push({ b, sQ: 1, hQ, meanSeqlen: 8192, causal: false, format: 'fp8' });
  return cases;
}

interface Inputs {
  seqlens: Int32Array;
  table: Int32Array;
  kcache: Tensor;
  blockTable: Tensor;
  cacheSeqlens: Tensor;
  destroy(): void;
}

/** Varlen seqlens as upstream (normal around the mean, sd mean/2, at least s_q), shuffled blocks, a cache filled on the GPU. */
function makeInputs(ctx: GpuContext, c: MlaBenchCase): Inputs | string {
  const rnd = lcg(c.meanSeqlen * 7 + c.b);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const seqlens = Int32Array.from({ length: c.b }, () => (c.decode ? c.meanSeqlen : Math.max(2, Math.round(c.meanSeqlen + (normal() * c.meanSeqlen) / 2))));
  const blocks = Array.from(seqlens, (n) => Math.ceil((c.decode ? DECODE_MAX : n) / BLOCK));
  const maxBlocks = Math.max(...blocks);
  const numBlocks = blocks.reduce((a, n) => a + n, 0);
  const layout = kvLayout('bench', c.format, D, DV);
  const rowBytes = c.format === 'fp8' ? layout.rowElems : 2 * D;
  const bytes = numBlocks * BLOCK * rowBytes;
  // Over one binding the kernel binds up to 4 windows of the one buffer; the buffer itself must fit.
  if (bytes > ctx.limits.maxBufferSize || bytes > 4 * ctx.limits.maxStorageBufferBindingSize) {
    return `skipped: the cache needs ${(bytes / 2 ** 30).toFixed(2)} GiB, over this device's maxBufferSize (${(ctx.limits.maxBufferSize / 2 ** 30).toFixed(2)} GiB) or 4 bindings of ${(ctx.limits.maxStorageBufferBindingSize / 2 ** 30).toFixed(2)} GiB`;
  }
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const table = new Int32Array(c.b * maxBlocks).fill(-1);
  let at = 0;
  blocks.forEach((n, b) => {
    for (let j = 0; j < n; j++) table[b * maxBlocks + j] = ids[at++];
  });
  const kcache = createTensor(ctx, [numBlocks, BLOCK, 1, layout.rowElems], layout.dtype, 'bench-kcache');
  // 1024 encoded random rows, copied over the whole cache on the GPU.
  const rows = 1024;
  const pattern: number[] = [];
  for (let r = 0; r < rows; r++) pattern.push(...encodeKvRow(layout, Array.from({ length: D }, () => rnd() * 2 - 1)));
  const src = uploadTensor(ctx, c.format === 'fp8' ? Uint8Array.from(pattern) : Uint16Array.from(pattern), [rows, layout.rowElems], layout.dtype);
  const enc = ctx.device.createCommandEncoder();
  for (let off = 0; off < kcache.byteLength; off += src.byteLength) enc.copyBufferToBuffer(src.buffer, 0, kcache.buffer, off, Math.min(src.byteLength, kcache.byteLength - off));
  ctx.device.queue.submit([enc.finish()]);
  const blockTable = uploadTensor(ctx, table, [c.b, maxBlocks], 'i32');
  const cacheSeqlens = uploadTensor(ctx, seqlens, [c.b], 'i32');
  return {
    seqlens,
    table,
    kcache,
    blockTable,
    cacheSeqlens,
    destroy() {
      for (const t of [src, kcache, blockTable, cacheSeqlens]) t.destroy();
    },
  };
}

const caseName = (c: MlaBenchCase) => `b=${c.b} s_q=${c.sQ} h_q=${c.hQ} seqlen${c.decode ? '=' : '~'}${c.meanSeqlen}${c.causal ? ' causal' : ''} ${c.format}${c.decode ? ' decode step (f32 q, replayable schedule)' : ''}`;

/** Time, rates and the bounding ceiling of one timed launch (upstream's flop and byte counts). */
function rateRow(name: string, ms: number, bytes: number, flops: number, opts: BenchOptions, note: string): BenchRow {
  const s = ms / 1e3;
  const gbs = bytes / s / 1e9;
  const tflops = flops / s / 1e12;
  const bw = opts.ceilings.find((x) => x.name === 'stream-read')?.value;
  const fma = opts.ceilings.find((x) => x.name === 'fma-f32')?.value;
  // The bound is whichever ceiling would take longer for this case.
  const tMem = bw ? bytes / (bw * 1e9) : 0;
  const tMath = fma ? flops / (fma * 1e12) : 0;
  const mathBound = tMath >= tMem;
  return {
    suite: 'mla',
    name,
    ms,
    gbs,
    tflops,
    pct: (100 * Math.max(tMem, tMath)) / s,
    ceiling: mathBound ? 'fma-f32' : 'stream-read',
    note: `${mathBound ? `${bw ? ((100 * gbs) / bw).toFixed(1) : '?'}% of stream-read` : `${fma ? ((100 * tflops) / fma).toFixed(1) : '?'}% of fma-f32`}; ${note}`,
  };
}

function forcedConfig(): Partial<MlaConfig> | undefined {
  const v = envVar('DEEPWGSL_MLA_CONFIG');
  if (!v) return undefined;
  let c: unknown;
  try {
    c = JSON.parse(v);
  } catch {
    c = undefined;
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) {
    throw new Error(`DEEPWGSL_MLA_CONFIG must be a JSON object (a partial MLA config, e.g. {"dk":16,"bnv":4}), got ${v}`);
  }
  return c as Partial<MlaConfig>;
}

async function runCase(ctx: GpuContext, c: MlaBenchCase, inputs: Inputs, opts: BenchOptions): Promise<BenchRow[]> {
  const name = caseName(c);
  const rnd = lcg(c.hQ * 31 + c.sQ);
  const q = uploadTensor(ctx, Float32Array.from({ length: c.b * c.sQ * c.hQ * D }, () => rnd() - 0.5), [c.b, c.sQ, c.hQ, D], c.decode ? 'f32' : 'bf16');
  const args: FlashMlaArgs = {
    q,
    kcache: inputs.kcache,
    blockTable: inputs.blockTable,
    cacheSeqlens: inputs.cacheSeqlens,
    hostSeqlens: inputs.seqlens,
    headDimV: DV,
    schedMeta: getMlaMetadata(c.decode ? { maxSeqlen: DECODE_MAX } : {}),
    causal: c.causal,
    kvFormat: c.format,
  };
  // The heuristic tiles, or with --tune every candidate timed (their times in the note) and the fastest used.
  const tuned = opts.tune ? await autotuneMla(ctx, args, { iters: Math.min(opts.iters, 5), force: true }) : undefined;
  // DEEPWGSL_MLA_CONFIG (JSON, a partial MlaConfig) forces the tiles of the throughput cases.
  // The decode-step cases take the Decoder's tiles.
  const forced = c.decode ? decodeMlaConfig(ctx, args) : forcedConfig();
  const planned = await planFlashMla(ctx, { ...args, config: tuned?.best ?? forced });
  const tried = tuned?.results.map((r) => `${r.config.kernel[0]}${r.config.wg}/${r.config.mt}/${r.config.bn}${r.config.dk ? `/${r.config.dk}/${r.config.bnv}` : ''}:${r.medianMs.toFixed(2)}`).join(' ');
  // Timed at the loaded clock, not the idle one that the cache upload leaves (two warm-up runs may
  // not ramp it).
  await raiseClocks(ctx);
  const t = await timeLaunch(ctx, planned.launch, { iters: c.decode ? Math.max(20, opts.iters) : opts.iters, warmup: 2 });
  const { bytes, flops, config } = planned.launch.info;
  let ms = t.medianMs;
  let chained = '';
  if (c.decode) {
    // What a decode step pays: calls chained in one pass, each waiting on the one before (a pass
    // per call adds its timestamps' cost), and the decode and combine dispatches alone.
    const chain = async (ds: readonly Dispatch[]) => (await timeLaunch(ctx, new Launch(ctx, ds, planned.launch.info), { iters: 10, warmup: 2, chain: 20 })).medianMs * 1e3;
    const ds = planned.launch.dispatches;
    const [whole, dec] = [await chain(ds), await chain(ds.slice(0, 1))];
    const comb = ds.length > 1 ? `${(await chain(ds.slice(1))).toFixed(1)}` : 'none';
    ms = whole / 1e3;
    chained = `chained x20 in one pass: ${whole.toFixed(1)} us per call (decode dispatch ${dec.toFixed(1)}, combine ${comb}); a pass per call ${(t.medianMs * 1e3).toFixed(1)} us; `;
  }
  const rows = [rateRow(name, ms, bytes, flops, opts, `${c.decode ? `latency-bound; ${chained}` : ''}${JSON.stringify(config)}; ${t.method}${tried ? `; tuned (r)ows/(t)iled wg/mt/bn[/dk/bnv]:ms ${tried}` : ''}`)];
  planned.out.destroy();
  planned.lse.destroy();
  args.schedMeta.destroy();
  // The unfused baseline on the same inputs (its operands past one storage binding: skipped with the reason).
  if (c.format === 'bf16' && c.sQ === 1 && !c.causal && !c.decode) {
    try {
      const u = await planUnfusedMla(ctx, { q, kcache: inputs.kcache, blockTable: inputs.table, seqlens: inputs.seqlens, headDimV: DV });
      await raiseClocks(ctx);
      const tu = await timeLaunch(ctx, u.launch, { iters: opts.iters, warmup: 1 });
      u.destroy();
      rows.push(rateRow(`${name} unfused`, tu.medianMs, bytes, flops, opts, `gather + ${c.b} x (QK^T GEMM) + softmax + ${c.b} x (P.V GEMM), f32 scores; the fused kernel is ${(tu.medianMs / t.medianMs).toFixed(2)}x faster`));
    } catch (e) {
      if (!(e instanceof DeepwgslError)) throw e;
      rows.push({ suite: 'mla', name: `${name} unfused`, ms: NaN, note: `skipped: ${e.message}` });
    }
  }
  q.destroy();
  return rows;
}

export const mlaSuite: BenchSuite = {
  flag: 'mla',
  describe: "MLA decode (FlashMLA's cases): time, TFLOP/s (b*h_q*s_q*mean_seqlen*2*(d+dv)), GB/s (q + cache + out)",
  async run(ctx, opts, emit) {
    const cases = mlaBenchCases(opts.quick, ctx.isSoftware);
    // Cases that share seqlens and format share one cache.
    const groups = new Map<string, MlaBenchCase[]>();
    for (const c of cases) {
      const k = `${c.meanSeqlen}|${c.format}|${c.b}`;
      groups.set(k, [...(groups.get(k) ?? []), c]);
    }
    for (const group of groups.values()) {
      const inputs = makeInputs(ctx, group[0]);
      for (const c of group) {
        if (typeof inputs === 'string') emit({ suite: 'mla', name: caseName(c), ms: NaN, note: inputs });
        else for (const row of await runCase(ctx, c, inputs, opts)) emit(row);
      }
      if (typeof inputs !== 'string') inputs.destroy();
    }
  },
};
