// Model runtime conformance: the GPU decode path against transformers' reference.json for the
// bundled fixtures (logits at every prompt position, then greedy tokens), plus loading errors.
import type { GpuContext } from '../../src/gpu/context.ts';
import { runtime } from '../../src/gpu/env.ts';
import { argmaxRef } from '../../src/kernels/nn/reference.ts';
import { openCheckpoint } from '../../src/model/checkpoint.ts';
import { Decoder, prefillLogits } from '../../src/model/decode.ts';
import { checkFits, loadWeights, planWeights } from '../../src/model/load.ts';
import { dirSource, filesSource, readText, type ModelSource } from '../../src/model/source.ts';
import { relErr, throwsLike, type Check, type CheckResult } from './check.ts';

interface Reference {
  prompt_ids: number[];
  logits: number[][];
  greedy_ids: number[];
}

/** A fixture directory: read from disk in Node/Deno; fetched whole in a browser (the driver serves the repository). */
async function fixture(name: string, files: string[]): Promise<ModelSource> {
  const dir = `tests/fixtures/${name}`;
  if (runtime() !== 'browser') return dirSource(dir);
  const got = await Promise.all(files.map(async (f) => new File([await (await fetch(`/${dir}/${f}`)).blob()], f)));
  return filesSource(got, dir);
}

async function fidelity(ctx: GpuContext, name: string, opts: { quantize?: 'fp8' } = {}): Promise<CheckResult> {
  const src = await fixture(name, ['config.json', 'model.safetensors', 'reference.json']);
  const ref = JSON.parse(await readText(src, 'reference.json')) as Reference;
  const ck = await openCheckpoint(src);
  const weights = await loadWeights(ctx, ck, opts);
  const dec = await Decoder.create(ctx, ck, weights, { maxSeqLen: 64 });
  try {
    const rows = await prefillLogits(dec, ref.prompt_ids);
    const err = Math.max(...rows.map((r, t) => relErr(r, ref.logits[t])));
    const ids: number[] = [];
    let last = rows[rows.length - 1];
    for (let i = 0; i < ref.greedy_ids.length; i++) {
      ids.push(argmaxRef(last));
      if (i + 1 < ref.greedy_ids.length) last = (await dec.step([{ seq: 0, token: ids[i] }]))[0];
    }
    const wrong = ids.filter((v, i) => v !== ref.greedy_ids[i]).length;
    // Greedy tokens must match exactly: a wrong one fails the check whatever the logits error.
    return { err: wrong ? Infinity : err, tol: 1e-3, note: `logits max|diff|/max|ref| ${err.toExponential(2)}; greedy ${ids.join(',')}${wrong ? ` (expected ${ref.greedy_ids.join(',')})` : ' (all match)'}` };
  } finally {
    dec.destroy();
    weights.destroy();
  }
}

export const modelChecks: Check[] = [
  { name: 'model tiny-v3-a (FP8, YaRN, sigmoid group routing): GPU logits and greedy tokens vs transformers', run: (ctx) => fidelity(ctx, 'tiny-v3-a') },
  {
    name: 'model loading refuses a model over the device limits before uploading, naming the tensor',
    async run(ctx) {
      const ck = await openCheckpoint(await fixture('tiny-v3-a', ['config.json', 'model.safetensors']));
      const plan = planWeights(ck);
      let err = 0;
      err += await throwsLike(() => checkFits({ ...ctx, limits: { ...ctx.limits, maxStorageBufferBindingSize: 400_000 } } as GpuContext, plan), /model too large for this device: tensor 'model.embed_tokens.weight' \[512, 256\] f32 needs 512.0 KiB .*nothing was uploaded/);
      err += await throwsLike(() => loadWeights(ctx, ck, { memoryBudget: 1_000_000 }), /weights need 4.32 MiB of GPU memory, over the budget of 976.6 KiB; nothing was uploaded/);
      return { err, tol: 0 };
    },
  },
];
