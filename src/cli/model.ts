// deepwgsl info (and the model commands that follow it): checkpoints in Hugging Face layout.
import { openCheckpoint, type Checkpoint } from '../model/checkpoint.ts';
import { activeParams, describeArch } from '../model/describe.ts';
import type { GpuContext } from '../gpu/context.ts';
import { Decoder, prefillLogits } from '../model/decode.ts';
import { checkLogits, generate, parseTokenIds, type PhaseTiming } from '../model/generate.ts';
import { loadTokenizer } from '../model/tokenizer.ts';
import { formatBytes, loadWeights, planWeights, type LoadProgress } from '../model/load.ts';
import { dirSource, readText } from '../model/source.ts';
import { argmaxRef } from '../kernels/nn/reference.ts';
import { compareLogits, describeAgreement } from '../model/fidelity.ts';
import { choice, float, int, out, readInput, type Command, type Values } from './command.ts';

function modelDir(values: Values, cmd: string): string {
  if (typeof values.model !== 'string') throw new Error(`deepwgsl ${cmd}: --model DIR is required`);
  return values.model;
}

async function info(values: Values): Promise<void> {
  const ck = await openCheckpoint(dirSource(modelDir(values, 'info')));
  const c = ck.config;
  const plan = planWeights(ck);
  const fp8 = planWeights(ck, { quantize: 'fp8' });
  const total = Object.values(plan.paramsByDtype).reduce((a, b) => a + b, 0);
  // The latent cache per token and layer: kv_lora_rank + rope dims, f32.
  const kvPerToken = c.numLayers * (c.kvLoraRank + c.qkRopeHeadDim) * 4;
  const largest = plan.tensors.reduce((a, b) => (b.gpuBytes > a.gpuBytes ? b : a));
  const report = {
    model: ck.source.where,
    files: ck.files,
    config: c,
    parameters: { total, active: Math.round(activeParams(ck)), byDtype: plan.paramsByDtype },
    gpuBytes: { weights: plan.gpuBytes, byDtype: plan.byDtype, weightsQuantizedFp8: fp8.gpuBytes, kvCachePerToken: kvPerToken },
    largestTensor: { name: largest.expected.name, shape: largest.expected.shape, bytes: largest.gpuBytes },
  };
  if (values.json) return out(JSON.stringify(report, null, 1));
  out(`model: ${ck.source.where} (${ck.files.length} file${ck.files.length > 1 ? 's' : ''}${c.fp8BlockSize ? ', block-FP8 weights' : ''})`);
  for (const l of describeArch(c)) out(l);
  out(`parameters: ${(total / 1e6).toFixed(2)} M (${(report.parameters.active / 1e6).toFixed(2)} M active per token); by dtype: ` +
    Object.entries(plan.paramsByDtype).map(([d, n]) => `${d} ${(n / 1e6).toFixed(2)} M`).join(', '));
  out(`GPU memory: weights ${formatBytes(plan.gpuBytes)} (${Object.entries(plan.byDtype).map(([d, n]) => `${d} ${formatBytes(n)}`).join(', ')}); ` +
    `with --quantize fp8 ${formatBytes(fp8.gpuBytes)}; KV cache ${formatBytes(kvPerToken)} per token (f32 latent)`);
  out(`largest tensor: ${largest.expected.name} [${largest.expected.shape.join(', ')}], ${formatBytes(largest.gpuBytes)} (must fit maxStorageBufferBindingSize)`);
}

/** A progress line on stderr, rewritten in place where stderr is a terminal. */
export function progressBar(label: string): (p: LoadProgress) => void {
  const tty = (globalThis as { process?: { stderr?: { isTTY?: boolean } } }).process?.stderr?.isTTY === true;
  let shown = -1;
  return (p) => {
    const pct = Math.floor((100 * p.bytesDone) / Math.max(1, p.bytesTotal));
    if (pct === shown && p.bytesDone < p.bytesTotal) return;
    shown = pct;
    const bar = '#'.repeat(Math.round(pct / 5)).padEnd(20, '.');
    const line = `${label} [${bar}] ${pct}% ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}`;
    if (tty) process.stderr.write(`\r${line}${p.bytesDone >= p.bytesTotal ? '\n' : ''}`);
    else if (p.bytesDone >= p.bytesTotal || pct % 25 === 0) console.error(line);
  };
}

function parseTokens(v: unknown, vocab: number): number[] {
  if (typeof v !== 'string' || !v) throw new Error('--tokens: expected a comma-separated list of token ids, e.g. --tokens 1,2,3');
  return parseTokenIds(v, vocab, ',', '--tokens');
}

/** The logits of another run of the same tokens: transformers' reference.json (its prompt_ids must match) or `logits --json` output. */
async function referenceLogits(file: string, tokens: number[], vocab: number): Promise<number[][]> {
  let ref: { logits?: unknown; prompt_ids?: unknown };
  try {
    ref = JSON.parse(await readInput(file, 'compare')) as typeof ref;
  } catch (e) {
    throw new Error(e instanceof SyntaxError ? `--compare ${file}: not JSON (${e.message})` : (e as Error).message);
  }
  const rows = ref?.logits;
  const shape = `[${tokens.length} positions][${vocab} logits]`;
  if (!Array.isArray(rows) || rows.length !== tokens.length) throw new Error(`--compare ${file}: expected a JSON object with "logits" ${shape} (reference.json or logits --json output)`);
  const bad = rows.findIndex((r) => !Array.isArray(r) || r.length !== vocab || !r.every((v) => typeof v === 'number' && Number.isFinite(v)));
  if (bad >= 0) throw new Error(`--compare ${file}: logits[${bad}] is not ${vocab} finite numbers (expected ${shape})`);
  if (ref.prompt_ids !== undefined && String(ref.prompt_ids) !== tokens.join(',')) throw new Error(`--compare ${file}: its prompt_ids are ${String(ref.prompt_ids)}, --tokens gave ${tokens.join(',')}`);
  return rows as number[][];
}

/** The cache positions a run needs, refused (naming the flags) past the model's max_position_embeddings. */
function positions(ck: Checkpoint, need: number, flags: string): number {
  const max = ck.config.maxPositionEmbeddings;
  if (need > max) throw new Error(`${flags}: ${need} positions, over this model's max_position_embeddings (${max})`);
  return need;
}

async function logits(values: Values, gpu: () => Promise<GpuContext>): Promise<void> {
  const activations = choice(values, 'activations', ['f32', 'fp8'] as const);
  const quantize = values.quantize === undefined ? undefined : choice(values, 'quantize', ['fp8'] as const);
  const ck = await openCheckpoint(dirSource(modelDir(values, 'logits')));
  const tokens = parseTokens(values.tokens, ck.config.vocabSize);
  // The cache holds the prompt: sized at 64 positions at least, it refused prompts of models with fewer.
  const maxSeqLen = positions(ck, tokens.length, '--tokens');
  const ref = typeof values.compare === 'string' ? await referenceLogits(values.compare, tokens, ck.config.vocabSize) : undefined;
  const ctx = await gpu();
  const weights = await loadWeights(ctx, ck, { quantize, onProgress: progressBar('loading') });
  const dec = await Decoder.create(ctx, ck, weights, { maxSeqLen, activations });
  try {
    const rows = await prefillLogits(dec, tokens);
    rows.forEach((r, i) => checkLogits(r, `logits: position ${i} (token ${tokens[i]})`));
    if (values.json) out(JSON.stringify({ logits: rows.map((r) => Array.from(r)) }));
    else rows.forEach((r, i) => out(`position ${i} (token ${tokens[i]}): argmax ${argmaxRef(r)}, logits ${Array.from(r.slice(0, 6), (v) => v.toFixed(4)).join(' ')} ...`));
    if (ref) console.error(`vs ${values.compare}: ${describeAgreement(compareLogits(rows, ref))}`);
  } finally {
    dec.destroy();
    weights.destroy();
  }
}

/** Per-token times of a generate phase: wall, GPU (timestamps) and host (the rest: writes, encoding, submit, waits, read-back), planning apart (once per batch shape). */
function perToken(t: PhaseTiming) {
  const per = (ms: number) => (t.tokens ? ms / t.tokens : 0);
  const replayed = t.wallMs - t.planMs;
  return {
    forwards: t.forwards,
    tokens: t.tokens,
    planMs: t.planMs,
    tokensPerS: replayed > 0 ? (t.tokens * 1e3) / replayed : 0,
    wallMsPerToken: per(replayed),
    gpuMsPerToken: t.gpuMs === undefined ? undefined : per(t.gpuMs),
    hostMsPerToken: t.gpuMs === undefined ? undefined : per(replayed - t.gpuMs),
  };
}

async function generateCmd(values: Values, gpu: () => Promise<GpuContext>): Promise<void> {
  if (values.prompt !== undefined && values.tokens !== undefined) throw new Error('deepwgsl generate: give --prompt TEXT or --tokens IDS, not both');
  if (values.greedy && values.temperature !== undefined) throw new Error('deepwgsl generate: give --greedy or --temperature T, not both');
  // Flags of sampling only: greedy decoding would ignore them without a word.
  for (const f of ['top-p', 'top-k', 'seed']) if (values[f] !== undefined && values.temperature === undefined) throw new Error(`--${f}: only with --temperature T (greedy decoding has no use for it)`);
  const maxNew = int(values, 'max-new-tokens');
  const sampling =
    values.temperature === undefined
      ? {}
      : {
          temperature: float(values, 'temperature', 0, Infinity),
          topP: values['top-p'] === undefined ? undefined : float(values, 'top-p', 0, 1, true),
          topK: values['top-k'] === undefined ? undefined : int(values, 'top-k', 0),
          seed: values.seed === undefined ? 0 : int(values, 'seed', 0),
        };
  const quantize = values.quantize === undefined ? undefined : choice(values, 'quantize', ['fp8'] as const);
  const src = dirSource(modelDir(values, 'generate'));
  const ck = await openCheckpoint(src);
  // Text in (--prompt) needs the checkpoint's tokenizer; text out is shown wherever it has one.
  const tokenizer = values.prompt !== undefined ? await loadTokenizer(src) : await loadTokenizer(src, { optional: true });
  // Several prompts: --tokens 1,2,3;4,5 decodes them together in one batch.
  const prompts = typeof values.prompt === 'string' && tokenizer
    ? [tokenizer.encode(values.prompt)]
    : String(values.tokens ?? '').split(';').map((p) => parseTokens(p, ck.config.vocabSize));
  const maxSeqLen = positions(ck, Math.max(...prompts.map((p) => p.length)) + maxNew, `--max-new-tokens ${maxNew} after a prompt of ${Math.max(...prompts.map((p) => p.length))} tokens`);
  const ctx = await gpu();
  const weights = await loadWeights(ctx, ck, { quantize, onProgress: progressBar('loading') });
  const dec = await Decoder.create(ctx, ck, weights, { maxSeqLen, maxBatch: prompts.length });
  try {
    const r = await generate(dec, prompts, { maxNewTokens: maxNew, stopTokens: values['ignore-eos'] ? [] : ck.config.eosTokenIds, ...sampling });
    const texts = tokenizer && r.ids.map((ids) => tokenizer.decode(ids));
    const timing = { prefill: perToken(r.prefill), decode: perToken(r.decode) };
    if (values.json) return out(JSON.stringify({ ids: prompts.length === 1 ? r.ids[0] : r.ids, ...(texts && { text: prompts.length === 1 ? texts[0] : texts }), timing }));
    r.ids.forEach((ids, i) => out(`${prompts.length > 1 ? `[${i}] ` : ''}${ids.join(' ')}${texts ? `\n${JSON.stringify(texts[i])}` : ''}`));
    out(`${r.tokens} tokens in ${r.steps} forwards, ${(r.ms / 1e3).toFixed(2)} s: ${((r.tokens * 1e3) / r.ms).toFixed(1)} tokens/s`);
    for (const [phase, t] of Object.entries(timing)) {
      if (!t.tokens) continue;
      const gpu = t.gpuMsPerToken === undefined ? 'GPU time unknown (no timestamp queries)' : `GPU ${t.gpuMsPerToken.toFixed(3)} ms/token, host ${t.hostMsPerToken!.toFixed(3)} ms/token`;
      out(`${phase}: ${t.tokens} tokens in ${t.forwards} forwards, ${t.tokensPerS.toFixed(1)} tokens/s, wall ${t.wallMsPerToken.toFixed(3)} ms/token; ${gpu} (planning apart: ${t.planMs.toFixed(0)} ms)`);
    }
  } finally {
    dec.destroy();
    weights.destroy();
  }
}

/** The main job: greedy decoding of the bundled tiny checkpoint, checked against transformers' tokens. */
async function demo(gpu: () => Promise<GpuContext>): Promise<void> {
  const ctx = await gpu();
  const dir = new URL('../tests/fixtures/tiny-v3-a/', import.meta.url);
  const { fileURLToPath } = await import('node:url');
  const src = dirSource(fileURLToPath(dir));
  const ref = JSON.parse(await readText(src, 'reference.json')) as { prompt_ids: number[]; greedy_ids: number[] };
  const ck = await openCheckpoint(src);
  for (const l of describeArch(ck.config)) out(l);
  const weights = await loadWeights(ctx, ck, { onProgress: progressBar('loading tiny-v3-a') });
  const dec = await Decoder.create(ctx, ck, weights, { maxSeqLen: 64 });
  try {
    out(`prompt: ${ref.prompt_ids.join(' ')}`);
    let line = 'greedy:';
    const r = await generate(dec, [ref.prompt_ids], { maxNewTokens: ref.greedy_ids.length, onToken: (_, t) => (line += ` ${t}`) });
    out(line);
    const same = r.ids[0].every((t, i) => t === ref.greedy_ids[i]) && r.ids[0].length === ref.greedy_ids.length;
    out(`transformers: ${ref.greedy_ids.join(' ')}  (${same ? 'identical' : 'DIFFERENT'})`);
    out(`${r.tokens} tokens (prompt + generated) in ${(r.ms / 1e3).toFixed(2)} s: ${((r.tokens * 1e3) / r.ms).toFixed(1)} tokens/s on ${ctx.describe()}`);
    if (!same) throw new Error('the greedy tokens differ from transformers\' reference');
  } finally {
    dec.destroy();
    weights.destroy();
  }
}

export const modelCommands: Command[] = [
  {
    name: 'demo',
    usage: ['deepwgsl demo                                 the main job: the bundled tiny DeepSeek-V3 checkpoint decoded greedily, checked against transformers'],
    options: {},
    run: (_v, gpu) => demo(gpu),
  },
  {
    name: 'info',
    usage: ['deepwgsl info --model DIR [--json]            architecture, parameters by dtype, GPU memory needed'],
    options: { model: { type: 'string' }, json: { type: 'boolean', default: false } },
    run: (values) => info(values),
  },
  {
    name: 'logits',
    usage: [
      'deepwgsl logits --model DIR --tokens 1,2,3 [--activations f32|fp8] [--quantize fp8] [--json] [--compare FILE]',
      '                                              logits at each position; --compare: cosine and clear-winner top-1 against another run\'s',
    ],
    options: {
      model: { type: 'string' },
      compare: { type: 'string' },
      tokens: { type: 'string' },
      activations: { type: 'string', default: 'f32' },
      quantize: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    run: (values, gpu) => logits(values, gpu),
  },
  {
    name: 'generate',
    usage: [
      'deepwgsl generate --model DIR (--tokens 1,2,3[;4,5] | --prompt TEXT) --max-new-tokens N [--greedy | --temperature T [--top-p P] [--top-k K] --seed S] [--json]',
      '                                              decode (several prompts: one batch); stops at the config\'s eos unless --ignore-eos',
    ],
    options: {
      model: { type: 'string' },
      tokens: { type: 'string' },
      prompt: { type: 'string' },
      'max-new-tokens': { type: 'string', default: '16' },
      greedy: { type: 'boolean', default: false },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      seed: { type: 'string' },
      'ignore-eos': { type: 'boolean', default: false },
      quantize: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    run: (values, gpu) => generateCmd(values, gpu),
  },
];
