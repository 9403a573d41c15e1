// What the playground can run: each entry makes random inputs for the chosen shape, plans the kernel
// with a config, runs it and compares against the CPU reference. Kernels add an entry here.
import {
  castCandidates,
  defaultCastConfig,
  perBlockCastToFp8,
  perTokenCastToFp8,
  planCast,
  readTensor,
  readTensorBits,
  uploadTensor,
  type CastConfig,
  calcDiff,
  createTensor,
  decodeE4M3,
  defaultGemmConfig,
  denseProblem,
  encodeE4M3,
  fp8GemmNT,
  maskedProblem,
  maskedReference,
  mGroupedFp8GemmNTMasked,
  gemmCandidates,
  gemmReference,
  type DType,
  type GemmConfig,
  type Tensor,
  defaultMlaConfig,
  mlaCandidates,
  planFlashMla,
  poisonTensor,
  type KvFormat,
  type MlaActDtype,
  type MlaConfig,
  type CastKind,
  type GpuContext,
  type Launch,
} from '../../src/index.ts';
import { relErr } from '../../tests/conformance/check.ts';
import { buildMlaCase, mlaOutTol, type MlaCase } from '../../tests/conformance/mla.ts';

export type Fields = Record<string, string>;

export interface PlaygroundRun {
  /** Error against the CPU reference, in the unit `errUnit` names, and its tolerance. */
  err: number;
  tol: number;
  errUnit: string;
  launch: Launch;
}

export interface PlaygroundKernel {
  name: string;
  /** Shape and dtype fields: a number's default, or the choices of a select (first is the default). */
  fields: Record<string, number | string[]>;
  /** The JIT kernel whose generated WGSL is shown and can be edited. */
  jitKernel(f: Fields, config: object): string;
  /** The heuristic's pick first, then the autotune candidates. */
  configs(ctx: GpuContext, f: Fields): Promise<object[]>;
  run(ctx: GpuContext, f: Fields, config: object): Promise<PlaygroundRun>;
}

function randomActivations(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => (Math.random() - 0.5) * 10 ** (Math.random() * 6 - 3));
}

const cast: PlaygroundKernel = {
  name: 'FP8 cast (1x128 per token / 128x128 per block)',
  fields: { kind: ['perToken', 'perBlock'], m: 256, k: 1024, input: ['f32', 'bf16'] },
  jitKernel: (f) => `cast.${f.kind}`,
  configs: async (ctx, f) => [defaultCastConfig(ctx, f.kind as CastKind), ...castCandidates(ctx, f.kind as CastKind)],
  async run(ctx, f, config) {
    const [m, k, kind] = [Number(f.m), Number(f.k), f.kind as CastKind];
    const xs = randomActivations(m * k);
    const x = uploadTensor(ctx, xs, [m, k], f.input as 'f32' | 'bf16');
    const planned = await planCast(ctx, kind, x, { config: config as CastConfig });
    await planned.launch.run();
    // The reference sees what the GPU saw: bf16 inputs are rounded on upload.
    const seen = (await readTensor(x)) as Float32Array;
    const ref = (kind === 'perToken' ? perTokenCastToFp8 : perBlockCastToFp8)(seen, m, k);
    const q = await readTensorBits(planned.q);
    const s = await readTensor(planned.scales);
    let bad = 0;
    for (let i = 0; i < q.length; i++) bad += q[i] !== ref.q[i] ? 1 : 0;
    for (let i = 0; i < s.length; i++) bad += s[i] !== ref.scales[i] ? 1 : 0;
    return { err: bad, tol: 0, errUnit: 'mismatched codes/scales (bit-identical expected)', launch: planned.launch };
  },
};

// MLA inputs come from the conformance suite's case builder: random q and cache, unused cache rows
// filled with NaN, block tables shuffled, and the float64 reference.
function mlaCase(f: Fields): MlaCase {
  const b = Number(f.b);
  const seqlen = Number(f.seqlen);
  return {
    b,
    sQ: Number(f.s_q),
    hQ: Number(f.h_q),
    hKv: Number(f.h_kv),
    d: Number(f.d),
    dv: Number(f.dv),
    blockSize: Number(f.blockSize),
    // Varlen: sequence i gets seqlen scaled by (i+1)/b, so lengths differ.
    seqlens: Array.from({ length: b }, (_, i) => Math.max(1, Math.round((seqlen * (i + 1)) / b))),
    causal: f.causal === 'yes',
    kvFormat: f.kvFormat as KvFormat,
    qDtype: f.q as MlaActDtype,
  };
}

const mla: PlaygroundKernel = {
  name: 'MLA decode (flashMlaWithKvcache)',
  fields: { b: 2, s_q: 1, h_q: 16, h_kv: 1, d: 576, dv: 512, seqlen: 200, blockSize: 64, kvFormat: ['bf16', 'f16', 'fp8'], q: ['bf16', 'f32', 'f16'], causal: ['no', 'yes'] },
  jitKernel: (_f, config) => ((config as MlaConfig).kernel === 'tiled' ? 'mla.decode_tiled' : 'mla.decode'),
  async configs(ctx, f) {
    const built = buildMlaCase(ctx, mlaCase(f));
    const c = mlaCandidates(ctx, built.args);
    built.destroy();
    return [defaultMlaConfig(ctx, { d: Number(f.d), dv: Number(f.dv), mRows: (Number(f.s_q) * Number(f.h_q)) / Number(f.h_kv) }), ...c];
  },
  async run(ctx, f, config) {
    const c = mlaCase(f);
    const built = buildMlaCase(ctx, c);
    const planned = await planFlashMla(ctx, { ...built.args, config: config as MlaConfig });
    poisonTensor(planned.out);
    await planned.launch.run();
    const err = relErr(await readTensor(planned.out), built.ref.out);
    return { err, tol: mlaOutTol(c.qDtype!), errUnit: 'max|out-ref|/max|ref| against the float64 reference', launch: planned.launch };
  },
};

const OUT_TOL: Record<string, number> = { bf16: 2 ** -8, f16: 2 ** -11, f32: 1e-5 };

/** Random FP8 operands with scales spanning 1e-3..1e3 (as the conformance checks use): `g` groups
 * (0: a dense GEMM) of A [m, k] and B [n, k], on the GPU and as float64 inputs to the references. */
function gemmOperands(ctx: GpuContext, f: Fields, g: number) {
  const [m, n, k] = [Number(f.m), Number(f.n), Number(f.k)];
  const [kb, nb, lead] = [Math.ceil(k / 128), Math.ceil(n / 128), g ? [g] : []];
  const G = Math.max(1, g);
  const codes = (len: number) => Uint8Array.from({ length: len }, () => encodeE4M3((Math.random() * 2 - 1) * 10 ** (Math.random() * 5 - 3)));
  const scales = (len: number) => Float32Array.from({ length: len }, () => 10 ** (Math.random() * 6 - 3));
  const [qa, sa, qb, sb] = [codes(G * m * k), scales(G * m * kb), codes(G * n * k), scales(G * nb * kb)];
  const lhs: [Tensor, Tensor] = [uploadTensor(ctx, qa, [...lead, m, k], 'e4m3'), uploadTensor(ctx, sa, [...lead, m, kb], 'f32')];
  const rhs: [Tensor, Tensor] = [uploadTensor(ctx, qb, [...lead, n, k], 'e4m3'), uploadTensor(ctx, sb, [...lead, nb, kb], 'f32')];
  const out = createTensor(ctx, [...lead, m, n], f.out as DType, 'out');
  const A = { x: Float64Array.from(qa, decodeE4M3), scales: sa };
  const B = { x: Float64Array.from(qb, decodeE4M3), scales: sb };
  return { lhs, rhs, out, A, B, m, n, k };
}

const gemm: PlaygroundKernel = {
  name: 'FP8 GEMM (fp8GemmNT: 1x128 x 128x128 scales)',
  fields: { m: 4, n: 512, k: 1024, out: ['bf16', 'f32', 'f16'] },
  jitKernel: (_f, config) => `gemm.${(config as GemmConfig).kernel}`,
  async configs(ctx, f) {
    const { lhs, rhs, out } = gemmOperands(ctx, f, 0);
    const p = denseProblem('fp8GemmNT', true, { a: lhs[0], sa: lhs[1], b: rhs[0], sb: rhs[1] }, out);
    return [defaultGemmConfig(ctx, p), ...gemmCandidates(ctx, p)];
  },
  async run(ctx, f, config) {
    const { lhs, rhs, out, A, B, m, n, k } = gemmOperands(ctx, f, 0);
    poisonTensor(out);
    const launch = await fp8GemmNT(ctx, lhs, rhs, out, { config: config as GemmConfig });
    const got = await readTensor(out);
    const want = gemmReference(A, B, m, n, k);
    return { err: relErr(got, want), tol: OUT_TOL[f.out], errUnit: `max|out-ref|/max|ref| (calc_diff ${calcDiff(got, want).toExponential(1)})`, launch };
  },
};

// MoE decode: group i gets maskedM = (i+1)/g of the rows, so groups differ; rows past it are not computed.
const maskedCounts = (g: number, m: number) => Array.from({ length: g }, (_, i) => Math.max(1, Math.round((m * (i + 1)) / g)));

const masked: PlaygroundKernel = {
  name: 'FP8 grouped GEMM, masked (mGroupedFp8GemmNTMasked)',
  fields: { groups: 4, m: 32, n: 256, k: 512, out: ['bf16', 'f32', 'f16'] },
  jitKernel: (_f, config) => `gemm.${(config as GemmConfig).kernel}`,
  async configs(ctx, f) {
    const { lhs, rhs, out, m } = gemmOperands(ctx, f, Number(f.groups));
    const counts = maskedCounts(Number(f.groups), m);
    const p = await maskedProblem(ctx, 'mGroupedFp8GemmNTMasked', true, { a: lhs[0], sa: lhs[1], b: rhs[0], sb: rhs[1] }, out, counts, m, true);
    return [defaultGemmConfig(ctx, p), ...gemmCandidates(ctx, p)];
  },
  async run(ctx, f, config) {
    const g = Number(f.groups);
    const { lhs, rhs, out, A, B, m, n, k } = gemmOperands(ctx, f, g);
    const counts = maskedCounts(g, m);
    poisonTensor(out);
    const launch = await mGroupedFp8GemmNTMasked(ctx, lhs, rhs, out, counts, m, { config: config as GemmConfig });
    const got = await readTensor(out);
    const want = maskedReference(A, B, counts, m, n, k);
    // Rows past maskedM stay as poisoned; compare the computed rows.
    const rows = counts.flatMap((c, i) => Array.from({ length: c * n }, (_, j) => i * m * n + j));
    const [o, r] = [rows.map((i) => got[i]), rows.map((i) => want[i])];
    return { err: relErr(o, r), tol: OUT_TOL[f.out], errUnit: `max|out-ref|/max|ref| over rows < maskedM [${counts.join(', ')}]`, launch };
  },
};

export const KERNELS: PlaygroundKernel[] = [mla, gemm, masked, cast];
