// deepwgsl synth: a synthetic checkpoint (random weights, real layout) for benchmarks and loader tests.
import { formatBytes } from '../model/load.ts';
import { SYNTH_PRESETS, writeSyntheticCheckpoint } from '../model/synthetic.ts';
import { num, out, type Command, type Values } from './command.ts';
import { progressBar } from './model.ts';

const optInt = (values: Values, name: string) => (values[name] === undefined ? undefined : num(values, name));

async function synth(values: Values): Promise<void> {
  if (typeof values.preset !== 'string') throw new Error(`deepwgsl synth: --preset is required (${Object.keys(SYNTH_PRESETS).join(', ')})`);
  if (typeof values.out !== 'string') throw new Error('deepwgsl synth: --out DIR is required');
  const dtype = values.dtype as string;
  if (dtype !== 'fp8' && dtype !== 'bf16') throw new Error(`--dtype: expected 'fp8' or 'bf16', got '${dtype}'`);
  const t0 = performance.now();
  const r = await writeSyntheticCheckpoint(values.out, {
    preset: values.preset,
    layers: optInt(values, 'layers'),
    vocab: optInt(values, 'vocab'),
    experts: optInt(values, 'experts'),
    seed: num(values, 'seed'),
    dtype,
    shardBytes: num(values, 'shard-mb') * 2 ** 20,
    onProgress: progressBar('writing'),
  });
  const s = (performance.now() - t0) / 1e3;
  out(`wrote ${r.dir}: ${r.files.length} file${r.files.length > 1 ? 's' : ''}, ${formatBytes(r.bytes)} in ${s.toFixed(1)} s (${(r.bytes / s / 1e6).toFixed(0)} MB/s); ` +
    `${r.config.modelType}, ${r.config.numLayers} layers, vocab ${r.config.vocabSize}${r.config.moe ? `, ${r.config.moe.nRoutedExperts} experts` : ''}, ${dtype}`);
}

export const synthCommands: Command[] = [
  {
    name: 'synth',
    usage: [
      `deepwgsl synth --preset ${Object.keys(SYNTH_PRESETS).join('|')} --out DIR [--layers N] [--vocab N] [--experts N] [--seed S] [--dtype fp8|bf16] [--shard-mb N]`,
      '                                             a checkpoint with random weights in the real layout',
    ],
    options: {
      preset: { type: 'string' },
      out: { type: 'string' },
      layers: { type: 'string' },
      vocab: { type: 'string' },
      experts: { type: 'string' },
      seed: { type: 'string', default: '0' },
      dtype: { type: 'string', default: 'fp8' },
      'shard-mb': { type: 'string', default: '4096' },
    },
    gpu: false,
    run: (values) => synth(values),
  },
];
