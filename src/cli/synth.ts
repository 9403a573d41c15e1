// deepwgsl synth: a synthetic checkpoint (random weights, real layout) for benchmarks and loader tests.
import { formatBytes } from '../model/load.ts';
import { SYNTH_PRESETS, writeSyntheticCheckpoint } from '../model/synthetic.ts';
import { choice, int, out, type Command, type Values } from './command.ts';
import { progressBar } from './model.ts';

const optInt = (values: Values, name: string) => (values[name] === undefined ? undefined : int(values, name));

async function synth(values: Values): Promise<void> {
  const preset = choice(values, 'preset', Object.keys(SYNTH_PRESETS));
  if (typeof values.out !== 'string') throw new Error('deepwgsl synth: --out DIR is required');
  const dtype = choice(values, 'dtype', ['fp8', 'bf16'] as const);
  const t0 = performance.now();
  const r = await writeSyntheticCheckpoint(values.out, {
    preset,
    layers: optInt(values, 'layers'),
    vocab: optInt(values, 'vocab'),
    experts: optInt(values, 'experts'),
    seed: int(values, 'seed', 0),
    dtype,
    // MiB; shards past 2^53 bytes would lose bytes to rounding.
    shardBytes: int(values, 'shard-mb', 1, 2 ** 32) * 2 ** 20,
    force: values.force === true,
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
      `deepwgsl synth --preset ${Object.keys(SYNTH_PRESETS).join('|')} --out DIR [--layers N] [--vocab N] [--experts N] [--seed S] [--dtype fp8|bf16] [--shard-mb N] [--force]`,
      '                                             a checkpoint with random weights in the real layout (--force: replace the checkpoint in DIR)',
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
      force: { type: 'boolean', default: false },
    },
    run: (values) => synth(values),
  },
];
