// Expert load counters: tokens routed to each logical expert, per MoE layer, accumulated on the GPU
// by getDispatchLayout (integer adds, no atomics needed: one writer per expert) across calls.
//
// Saved format (what `deepwgsl eplb --load counts.json` reads):
//   { "layers": [[count of expert 0, count of expert 1, ...], ...] }
// one row per MoE layer, numExperts non-negative integers each, all rows the same length.
import type { GpuContext } from '../../gpu/context.ts';
import { fail } from '../../gpu/errors.ts';
import { createTensor, readTensor, type Tensor } from '../../gpu/tensor.ts';

export interface ExpertLoadJson {
  layers: number[][];
}

export class ExpertLoadCounters {
  /** [numLayers, numExperts] u32 */
  readonly tensor: Tensor;

  constructor(
    readonly ctx: GpuContext,
    readonly numLayers: number,
    readonly numExperts: number,
  ) {
    if (!Number.isInteger(numLayers) || numLayers < 1) fail('ExpertLoadCounters', 'numLayers', 'a positive integer', numLayers);
    if (!Number.isInteger(numExperts) || numExperts < 1) fail('ExpertLoadCounters', 'numExperts', 'a positive integer', numExperts);
    this.tensor = createTensor(ctx, [numLayers, numExperts], 'u32', 'expertLoad');
    this.reset();
  }

  /** Zeroes every layer's counts (queued: ordered before work submitted later). */
  reset(): void {
    this.ctx.device.queue.writeBuffer(this.tensor.buffer, this.tensor.byteOffset, new Uint8Array(this.tensor.byteLength));
  }

  /** Counts per layer, per logical expert. */
  async read(): Promise<number[][]> {
    const flat = await readTensor(this.tensor);
    return Array.from({ length: this.numLayers }, (_, l) => Array.from(flat.subarray(l * this.numExperts, (l + 1) * this.numExperts)));
  }

  async toJson(): Promise<ExpertLoadJson> {
    return { layers: await this.read() };
  }

  destroy(): void {
    this.tensor.destroy();
  }
}

/** Validates a parsed counts file: `{ layers: number[][] }`, rows of equal length, loads >= 0 (averaged loads need not be integers). */
export function parseExpertLoad(json: unknown, numExperts?: number): ExpertLoadJson {
  const where = 'parseExpertLoad';
  const layers = (json as ExpertLoadJson | null)?.layers;
  if (!Array.isArray(layers) || layers.length === 0) fail(where, 'layers', 'a non-empty array of per-layer count arrays', JSON.stringify(json)?.slice(0, 80));
  const width = numExperts ?? (layers[0] as unknown[])?.length;
  layers.forEach((row, l) => {
    if (!Array.isArray(row) || row.length !== width) fail(where, `layers[${l}] length`, `${width} (one count per expert)`, Array.isArray(row) ? row.length : typeof row);
    row.forEach((v, e) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(where, `layers[${l}][${e}]`, 'a finite non-negative number', v);
    });
  });
  return { layers };
}
