// The float64 reference forward pass against transformers' outputs for the bundled fixtures.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../src/model/checkpoint.ts';
import { readAllWeightsF64, ReferenceModel, referenceGenerate } from '../src/model/reference.ts';
import { dirSource } from '../src/model/source.ts';
import { compareLogits, describeAgreement } from '../src/model/fidelity.ts';

const FIXTURES = ['tiny-v3-a', 'tiny-v2-b', 'tiny-v2-c', 'tiny-v3-d-bf16', 'tiny-v3-e-sharded'];

function relErr(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(out[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  return num / den;
}

describe.each(FIXTURES)('model reference forward: %s', (name) => {
  const dir = `tests/fixtures/${name}`;
  const ref = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as { prompt_ids: number[]; logits: number[][]; greedy_ids: number[] };
  for (const absorbed of [false, true]) {
    it(`${absorbed ? 'absorbed' : 'non-absorbed'} MLA: logits < 1e-4 relative and greedy ids exact`, async () => {
      const ck = await openCheckpoint(dirSource(dir));
      const model = new ReferenceModel(ck.config, await readAllWeightsF64(ck), { absorbed });
      const out = referenceGenerate(model, ref.prompt_ids, ref.greedy_ids.length);
      const errs = out.logits.map((row, t) => relErr(row, ref.logits[t]));
      expect(Math.max(...errs)).toBeLessThan(1e-4);
      expect(out.ids).toEqual(ref.greedy_ids);
    });
  }
});

describe('compareLogits', () => {
  it('cosine per position; top-1 judged only where the reference winner is clear', () => {
    const ref = [[1, 0.99, 0], [1, 0, 0], [0, 2, 1]];
    const got = [[0.9, 1, 0], [0, 1, 0], [0, 2, 1]];
    const a = compareLogits(got, ref);
    expect(a.clear).toEqual([1, 2]); // position 0's margin (0.01) is under 5% of max|logit|
    expect(a.flipped).toEqual([1]);
    expect(a.cosine[2]).toBeCloseTo(1, 12);
    expect(a.cosine[1]).toBeCloseTo(0, 12);
    expect(describeAgreement(a)).toMatch(/top-1 agrees at 1 of 2 clear positions \(differs at 1\)/);
    expect(() => compareLogits(got, ref.slice(1))).toThrow(/3 positions against a reference of 2/);
  });
});
