// Model runtime conformance: the GPU decode path against transformers' reference.json for the
// bundled fixtures (logits at every prompt position, then greedy tokens), plus loading errors.
import type { GpuContext } from '../../src/gpu/context.ts';
import { envVar, runtime } from '../../src/gpu/env.ts';
import { argmaxRef } from '../../src/kernels/nn/reference.ts';
import { readAllWeightsF64, ReferenceModel } from '../../src/model/reference.ts';
import { openCheckpoint, type Checkpoint } from '../../src/model/checkpoint.ts';
import { Decoder, prefillLogits, type DecoderOptions } from '../../src/model/decode.ts';
import { compareLogits, describeAgreement } from '../../src/model/fidelity.ts';
import { generate } from '../../src/model/generate.ts';
import { checkFits, loadWeights, planWeights, type ModelWeights } from '../../src/model/load.ts';
import { dirSource, filesSource, readText, type ModelSource } from '../../src/model/source.ts';
import { perBlockCastToFp8 } from '../../src/formats/casts.ts';
import { readTensor, readTensorBits } from '../../src/gpu/tensor.ts';
import { decodeStBytes, readStBytes } from '../../src/model/checkpoint.ts';
import { mismatches, relErr, throwsLike, type Check, type CheckResult } from './check.ts';

interface Reference {
  prompt_ids: number[];
  logits: number[][];
  greedy_ids: number[];
}

/** A fixture directory (a name under tests/fixtures, or a path such as models/tiny-kjv): read from disk in
 * Node/Deno; fetched whole in a browser (the driver serves the repository). */
async function fixture(name: string): Promise<ModelSource> {
  const dir = name.includes('/') ? name : `tests/fixtures/${name}`;
  if (runtime() !== 'browser') return dirSource(dir);
  const get = async (f: string) => {
    const r = await fetch(`/${dir}/${f}`);
    return r.ok ? new File([await r.blob()], f) : undefined;
  };
  const files = [await get('config.json'), await get('reference.json')];
  const index = await get('model.safetensors.index.json');
  const shards = index ? [...new Set(Object.values((JSON.parse(await index.text()) as { weight_map: Record<string, string> }).weight_map))] : ['model.safetensors'];
  for (const f of shards) files.push(await get(f));
  return filesSource([...files, index].filter((f): f is File => f !== undefined), dir);
}

/** Loads a fixture and its transformers reference, runs `body` with a decoder over it, frees both. */
async function withDecoder<T>(ctx: GpuContext, name: string, opts: DecoderOptions, body: (f: { ck: Checkpoint; ref: Reference; dec: Decoder }) => Promise<T>): Promise<T> {
  const src = await fixture(name);
  const ref = JSON.parse(await readText(src, 'reference.json')) as Reference;
  const ck = await openCheckpoint(src);
  const weights = await loadWeights(ctx, ck);
  const dec = await Decoder.create(ctx, ck, weights, opts);
  try {
    return await body({ ck, ref, dec });
  } finally {
    dec.destroy();
    weights.destroy();
  }
}

async function fidelity(ctx: GpuContext, name: string, tokenByToken: boolean): Promise<CheckResult> {
  return withDecoder(ctx, name, { maxSeqLen: 64 }, async ({ ref, dec }) => {
    // The prompt in one forward (s_q = its length), or one token per step (the decode path alone).
    const rows = tokenByToken ? await stepwise(dec, ref.prompt_ids) : await prefillLogits(dec, ref.prompt_ids);
    const err = Math.max(...rows.map((r, t) => relErr(r, ref.logits[t])));
    const ids = [argmaxRef(rows[rows.length - 1])];
    const n = ref.greedy_ids.length;
    if (tokenByToken) {
      // Logits read back and argmax on the CPU.
      while (ids.length < n) ids.push(argmaxRef((await dec.step([{ seq: 0, token: ids[ids.length - 1] }]))[0]));
    } else {
      // Argmax on the GPU, fed to the next step there (what generate does for greedy decoding).
      await dec.greedy([{ seq: 0, token: ids[0] }], n - 1, (t) => void ids.push(t[0]));
    }
    const wrong = ids.filter((v, i) => v !== ref.greedy_ids[i]).length;
    // Greedy tokens must match exactly: a wrong one fails the check whatever the logits error.
    return { err: wrong ? Infinity : err, tol: 1e-3, note: `logits max|diff|/max|ref| ${err.toExponential(2)}; greedy ${ids.join(',')}${wrong ? ` (expected ${ref.greedy_ids.join(',')})` : ' (all match)'}` };
  });
}

async function stepwise(dec: Decoder, tokens: readonly number[]): Promise<Float32Array[]> {
  const rows: Float32Array[] = [];
  for (const token of tokens) rows.push((await dec.step([{ seq: 0, token }]))[0]);
  return rows;
}

const fidelityCheck = (name: string, what: string, tokenByToken = false, oracle = 'transformers'): Check => ({
  name: `model ${name} (${what}): GPU logits${tokenByToken ? ' (prompt fed token by token)' : ' (prompt in one prefill)'} and greedy tokens${tokenByToken ? '' : ' (chosen on the GPU)'} vs ${oracle}`,
  run: (ctx) => fidelity(ctx, name, tokenByToken),
});

// A decode step takes ~1.5 s on SwiftShader (mostly the MoE layer), so CI runs two fixtures;
// DEEPWGSL_MODEL_FIXTURES=all adds the other three (seconds each on lavapipe or a real GPU).
const more = envVar('DEEPWGSL_MODEL_FIXTURES') === 'all';

export const modelChecks: Check[] = [
  fidelityCheck('tiny-v3-a', 'FP8, YaRN, sigmoid group routing'),
  // One fixture through the prefill, one token by token (fewer pipelines to compile on software adapters).
  fidelityCheck('tiny-v2-b', 'V2: q_proj, softmax greedy routing, BF16', true),
  // The bundled trained model (its MTP layer's tensors ride along unused), against its training code's float64 forward.
  fidelityCheck('models/tiny-kjv', 'trained V3: FP8, BF16 embeddings, MTP layer stored', true, 'the training code in float64'),
  ...(more
    ? [
        fidelityCheck('tiny-v2-c', 'V2 group-limited, FP8'),
        fidelityCheck('tiny-v3-d-bf16', 'BF16, YaRN factor 40, mscale != mscale_all_dim'),
        fidelityCheck('tiny-v3-e-sharded', '3 shards, partial scale blocks'),
      ]
    : []),
  {
    name: 'model tiny-v2-c with FP8 activations (1x128 casts before the FP8 linears): GPU logits vs the float64 reference with the same casts; cosine and clear-winner top-1 vs transformers',
    run: (ctx) =>
      withDecoder(ctx, 'tiny-v2-c', { maxSeqLen: 16, activations: 'fp8' }, async ({ ck, ref, dec }) => {
        const rows = await prefillLogits(dec, ref.prompt_ids);
        const model = new ReferenceModel(ck.config, await readAllWeightsF64(ck), { absorbed: true, fp8Input: (w) => dec.fp8Input(w) });
        // Without the casts the reference stands 16% away (max|diff|/max|ref|): the GPU must
        // follow the reference that makes the same casts much closer than that (rounding of values on an
        // e4m3 boundary may differ between f32 and float64, so not exactly).
        const err = Math.max(...ref.prompt_ids.map((t, i) => relErr(rows[i], model.step(t))));
        const vsHf = compareLogits(rows, ref.logits);
        // FP8 noise may flip near-ties, never a clear winner (tiny-v3-a's random weights flip one even in float64: see README).
        return { err: vsHf.flipped.length ? Infinity : err, tol: 0.08, note: `vs the casting reference ${err.toExponential(2)}; vs transformers: ${describeAgreement(vsHf)}` };
      }),
  },
  {
    name: 'model prefill of 22 tokens (the contiguous MoE layout; shorter prompts take the masked one) vs the float64 reference, every position',
    run: (ctx) =>
      withDecoder(ctx, 'tiny-v3-a', { maxSeqLen: 32 }, async ({ ck, ref, dec }) => {
        // The prompt and its greedy continuation: fixed tokens, whose routing has no near-ties (random
        // ones can put two experts within f32 rounding, and the float64 reference then picks the other).
        const tokens = [...ref.prompt_ids, ...ref.greedy_ids];
        const rows = await prefillLogits(dec, tokens);
        const model = new ReferenceModel(ck.config, await readAllWeightsF64(ck), { absorbed: true });
        const err = Math.max(...tokens.map((t, i) => relErr(rows[i], model.step(t))));
        return { err, tol: 1e-3 };
      }),
  },
  {
    name: 'model batch: two sequences of different lengths in one batch decode as each does alone; seeded top-p repeats',
    run: (ctx) =>
      withDecoder(ctx, 'tiny-v2-b', { maxSeqLen: 16, maxBatch: 2, blockSize: 4 }, async ({ ref, dec }) => {
        const prompts = [ref.prompt_ids.slice(0, 4), ref.prompt_ids.slice(4, 6)];
        let bad = 0;
        const notes: string[] = [];
        const together = await generate(dec, prompts, { maxNewTokens: 3 });
        const alone = [(await generate(dec, [prompts[0]], { maxNewTokens: 3 })).ids[0], (await generate(dec, [prompts[1]], { maxNewTokens: 3 })).ids[0]];
        bad += mismatches(together.ids[0], alone[0]) + mismatches(together.ids[1], alone[1]);
        notes.push(`greedy ${JSON.stringify(together.ids)}${bad ? ` alone ${JSON.stringify(alone)}` : ''}`);
        // Seeded sampling repeats itself.
        const sampling = { maxNewTokens: 3, temperature: 0.8, topP: 0.9, seed: 5 };
        const s1 = await generate(dec, prompts, sampling);
        const s2 = await generate(dec, prompts, sampling);
        bad += mismatches(s1.ids.flat(), s2.ids.flat());
        notes.push(`top-p ${JSON.stringify(s1.ids)}`);
        return { err: bad, tol: 0, note: notes.join(' ') };
      }),
  },
  {
    name: 'model replay: prefills and decode steps of 3 sequences (lengths 4, 2, 1; batches of 3 then 2, MLA row tiles), a prefill of the last position\'s logits only, then greedy steps chosen on the GPU stopped early, vs the float64 reference; plans reused, no buffers made per replayed step',
    // Blocks of 4 rows: sequences span several, and MLA's schedule splits them on a small device.
    // Decode steps on MLA's row kernel (the tiles the decoder picks for V2-Lite-sized heads; the other checks take the default tiles).
    run: (ctx) =>
      withDecoder(ctx, 'tiny-v2-b', { maxSeqLen: 12, maxBatch: 3, blockSize: 4, mlaConfig: { kernel: 'rows', wg: 64, mt: 4, bn: 8 } }, async ({ ck, ref, dec }) => {
        const f64 = await readAllWeightsF64(ck);
        const { device } = ctx;
        const createBuffer = device.createBuffer;
        let made = 0;
        try {
          // Prompt lengths as the batch check's (4, 2) and 1: their plans' pipelines are compiled once for both.
          const prompts = [ref.prompt_ids.slice(0, 4), ref.prompt_ids.slice(4, 6), ref.prompt_ids.slice(6, 7)];
          const refs = prompts.map(() => new ReferenceModel(ck.config, f64, { absorbed: true }));
          let err = 0;
          const next: number[] = [];
          const lastRef: Float64Array[] = [];
          for (let i = 0; i < prompts.length; i++) {
            const rows = await dec.prefill(i, prompts[i]);
            rows.forEach((r, t) => (err = Math.max(err, relErr(r, (lastRef[i] = refs[i].step(prompts[i][t]))))));
            next.push(argmaxRef(rows[rows.length - 1]));
          }
          // The last position's logits alone (what generation asks for), from a plan of their own.
          const lastOnly = await dec.prefill(9, prompts[0], { logits: 'last' });
          dec.release(9);
          err = Math.max(err, relErr(lastOnly[0], lastRef[0]));
          // Replayed steps must not make buffers (a leak per step would): counted from each shape's second step on.
          device.createBuffer = (d: GPUBufferDescriptor) => {
            made++;
            return createBuffer.call(device, d);
          };
          // A shape's first step plans it and makes buffers: that the counter sees them shows it counts at all.
          let planning = 0;
          const steps = async (seqs: number[], n: number) => {
            for (let s = 0; s < n; s++) {
              const before = made;
              const rows = await dec.step(seqs.map((seq) => ({ seq, token: next[seq] })));
              if (s === 0) {
                planning += made - before;
                made = before;
              }
              rows.forEach((r, j) => {
                err = Math.max(err, relErr(r, refs[seqs[j]].step(next[seqs[j]])));
                next[seqs[j]] = argmaxRef(r);
              });
            }
          };
          await steps([0, 1, 2], 3);
          await steps([2, 0], 2);
          // Greedy with the tokens chosen on the GPU, stopped after 2 of 3 steps: each step's tokens
          // are the reference's argmax, and the step already submitted past the stop is taken back,
          // so that the next step() goes on as the reference does (an extra cache row would show in its logits).
          const seqs = [2, 0];
          const lens = seqs.map((q) => dec.allocator.length(q));
          let wrong = 0;
          let seen = 0;
          const taken = await dec.greedy(seqs.map((seq) => ({ seq, token: next[seq] })), 3, (t) => {
            seqs.forEach((seq, j) => {
              wrong += t[j] === argmaxRef(refs[seq].step(next[seq])) ? 0 : 1;
              next[seq] = t[j];
            });
            return ++seen < 2;
          });
          const rolled = seqs.reduce((a, q, j) => a + Math.abs(dec.allocator.length(q) - lens[j] - 2), 0);
          await steps(seqs, 1);
          device.createBuffer = createBuffer;
          const shapes = dec.plannedShapes.sort().join(' ');
          const bad = (shapes === '1x1 1x2 1x4 1x4:last 2x1 3x1' ? 0 : 1) + (lastOnly.length === 1 ? 0 : 1) + made + (planning > 0 ? 0 : 1) + wrong + rolled + (taken === 2 ? 0 : 1);
          // Bad input: uneven tokens per entry, past maxSeqLen.
          let errors = await throwsLike(() => dec.forward([{ seq: 0, tokens: [1] }, { seq: 1, tokens: [1, 2] }]), /Decoder.forward: tokens must be the same non-zero number of tokens for every entry, got \[1, 2\]/);
          errors += await throwsLike(() => dec.prefill(7, [...ref.prompt_ids, 1]), /sequence 7 \(length 0\) cannot take 13 more tokens: maxSeqLen is 12/);
          return { err: bad || errors ? Infinity : err, tol: 1e-3, note: `max rel err ${err.toExponential(2)}; plans ${shapes}; buffers made in replayed steps: ${made} (planning: ${planning}); greedy on the GPU: ${taken} steps, ${wrong} tokens off the reference's argmax, rows left over ${rolled}` };
        } finally {
          device.createBuffer = createBuffer;
        }
      }),
  },
  {
    name: 'model generate: NaN in one logit ends generation with an error naming the step, on the greedy path (the GPU argmax flags it) and the sampling path',
    run: (ctx) =>
      // The batch check's decoder options: its plans' pipelines are compiled once for both.
      withDecoder(ctx, 'tiny-v2-b', { maxSeqLen: 16, maxBatch: 2, blockSize: 4 }, async ({ ref, dec }) => {
        const head = dec.weights.get('lm_head.weight').t;
        // Row 5 of lm_head (bf16) gets two NaNs once the first token is out: logit 5 is NaN, the rest finite.
        const at = head.byteOffset + 5 * head.pitch * 2;
        const saved = (await readTensorBits(head)).slice(5 * head.pitch, 5 * head.pitch + 2);
        const poison = (on: boolean) => ctx.device.queue.writeBuffer(head.buffer, at, on ? Uint16Array.of(0x7fc0, 0x7fc0) : Uint16Array.from(saved));
        const prompt = [ref.prompt_ids.slice(0, 4)];
        const notes: string[] = [];
        for (const [opts, re] of [
          [{}, /Decoder.greedy: step 0 \(sequence \d+, the token at position 4\): its logits hold NaN or Inf, so no token can be chosen/],
          [{ temperature: 0.8, seed: 1 }, /generate: prompt 0, new token 2: the logits hold NaN at token id 5, so no token can be chosen/],
        ] as const) {
          try {
            const r = await generate(dec, prompt, { maxNewTokens: 4, ...opts, onToken: () => poison(true) });
            notes.push(`no error: ${JSON.stringify(r.ids)}`);
          } catch (e) {
            if (!re.test((e as Error).message)) notes.push((e as Error).message);
          } finally {
            poison(false);
          }
        }
        // Unpoisoned, the same decoder generates again.
        const after = await generate(dec, prompt, { maxNewTokens: 2 });
        return { err: notes.length + (after.ids[0].length === 2 ? 0 : 1), tol: 0, note: notes.join('; ') || undefined };
      }),
  },
  {
    name: 'model loading with quantize fp8: BF16 weights cast to e4m3 + 128x128 scales bit-identical to the CPU cast; progress reaches the total',
    async run(ctx) {
      const ck = await openCheckpoint(await fixture('tiny-v3-d-bf16'));
      const seen: number[] = [];
      const w = await loadWeights(ctx, ck, { quantize: 'fp8', onProgress: (p) => seen.push(p.bytesDone / p.bytesTotal) });
      try {
        let bad = 0;
        for (const name of ['model.layers.0.self_attn.q_b_proj.weight', 'model.layers.1.mlp.experts.3.down_proj.weight']) {
          const st = ck.tensors.get(name)!;
          const ref = perBlockCastToFp8(Float32Array.from(decodeStBytes(await readStBytes(st), st.dtype)), st.shape[0], st.shape[1]);
          const g = w.get(name);
          bad += g.t.dtype === 'e4m3' ? mismatches(await readTensorBits(g.t), ref.q) + mismatches(await readTensor(g.scale!), ref.scales) : 1;
        }
        const monotone = seen.every((v, i) => i === 0 || v >= seen[i - 1]);
        return { err: bad + (monotone && seen[seen.length - 1] === 1 ? 0 : 1), tol: 0, note: `${seen.length} progress reports` };
      } finally {
        w.destroy();
      }
    },
  },
  {
    name: 'model loading refuses NaN and Inf in weights, block scales and FP8 NaN codes, naming the tensor and element',
    async run(ctx) {
      const src = await fixture('tiny-v3-a');
      const { tensors } = await openCheckpoint(src);
      const f32 = (v: number) => new Uint8Array(Float32Array.of(v).buffer);
      const cases: [string, Uint8Array, RegExp][] = [
        ['model.layers.1.mlp.experts.3.up_proj.weight', Uint8Array.of(0xff), /tensor 'model.layers.1.mlp.experts.3.up_proj.weight' F8_E4M3 \[96, 256\] holds NaN at element 5: the checkpoint is corrupt/],
        ['model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv', f32(Infinity), /tensor 'model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv' F32 \[1, 2\] holds Infinity at element 1/],
        ['model.norm.weight', f32(NaN), /tensor 'model.norm.weight' F32 \[256\] holds NaN at element 5/],
      ];
      const notes: string[] = [];
      for (const [name, bytes, re] of cases) {
        const t = tensors.get(name)!;
        // Element 5 (1 for the two scales) replaced as the file is read.
        const at = t.offset + Math.min(5, t.byteLength / bytes.length - 1) * bytes.length;
        const patched: ModelSource = {
          ...src,
          open(f) {
            const file = src.open(f);
            return {
              ...file,
              async read(offset, length) {
                const b = (await file.read(offset, length)).slice();
                if (f === 'model.safetensors' && at >= offset && at < offset + length) b.set(bytes, at - offset);
                return b;
              },
            };
          },
        };
        try {
          (await loadWeights(ctx, await openCheckpoint(patched))).destroy();
          notes.push(`${name}: loaded`);
        } catch (e) {
          if (!re.test((e as Error).message)) notes.push((e as Error).message);
        }
      }
      return { err: notes.length, tol: 0, note: notes.join('; ') || undefined };
    },
  },
  {
    name: 'model loading refuses a model over the device limits before uploading, naming the tensor; Decoder.create a cache over one buffer before touching a weight',
    async run(ctx) {
      const ck = await openCheckpoint(await fixture('tiny-v3-a'));
      const plan = planWeights(ck);
      let err = 0;
      err += await throwsLike(() => checkFits({ ...ctx, limits: { ...ctx.limits, maxStorageBufferBindingSize: 400_000 } } as GpuContext, plan), /model too large for this device: tensor 'model.embed_tokens.weight' \[512, 256\] f32 needs 512.0 KiB .*nothing was uploaded/);
      err += await throwsLike(() => loadWeights(ctx, ck, { memoryBudget: 1_000_000 }), /weights need 4.32 MiB of GPU memory, over the budget of 976.6 KiB; nothing was uploaded/);
      // The cache is refused before a weight is touched (none is given here).
      const none = undefined as unknown as ModelWeights;
      err += await throwsLike(() => Decoder.create(ctx, ck, none, { maxBatch: 1e6, maxSeqLen: 4096 }), /Decoder: maxBatch x maxSeqLen must be a cache within one buffer per layer \(\d+ bytes, 2147483648 rows\), got '1000000 x 4096: 4096000000 rows/);
      // f16 rows of kv_lora_rank + rope = 80: one batch entry more than maxBufferSize holds.
      const batch = Math.floor(ctx.limits.maxBufferSize / (4096 * 80 * 2)) + 1;
      err += await throwsLike(() => Decoder.create(ctx, ck, none, { maxBatch: batch, maxSeqLen: 4096 }), new RegExp(`Decoder: maxBatch x maxSeqLen must be a cache within one buffer per layer .*got '${batch} x 4096: ${batch * 4096} rows, ${batch * 4096 * 160} bytes'`));
      return { err, tol: 0 };
    },
  },
];
