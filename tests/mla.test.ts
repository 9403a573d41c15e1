// MLA pieces that need no GPU: the split-KV scheduler, the block allocator, the fp8 row format and
// the float64 reference on hand-checked cases.
import { describe, expect, it } from 'vitest';
import { BlockAllocator, INVALID_BLOCK } from '../src/kernels/mla/allocator.ts';
import { decodeKvRow, encodeKvRow, fp8TileScale, kvLayout } from '../src/kernels/mla/kvformat.ts';
import { mlaReference } from '../src/kernels/mla/reference.ts';
import { maxScheduleItems, scheduleSplits } from '../src/kernels/mla/schedule.ts';

describe('scheduleSplits', () => {
  const lengths = [4096, 0, 100, 32768, 1, 640, 0, 9000];
  for (const parts of [1, 3, 16, 132, 1000]) {
    it(`covers every sequence exactly once, in order, with ${parts} parts`, () => {
      const s = scheduleSplits(lengths, 64, parts);
      lengths.forEach((len, b) => {
        const mine = s.items.filter((w) => w.batch === b);
        expect(mine.length).toBeGreaterThanOrEqual(1);
        expect(mine[0].start).toBe(0);
        expect(mine[mine.length - 1].end).toBe(len);
        for (let i = 1; i < mine.length; i++) expect(mine[i].start).toBe(mine[i - 1].end);
        // Pieces start on block boundaries.
        for (const w of mine) expect(w.start % 64).toBe(0);
        // One piece writes out itself; several go through numbered scratch slots.
        if (mine.length === 1) expect(mine[0].slot).toBe(-1);
        else expect(mine.map((w) => w.slot)).toEqual(Array.from({ length: mine.length }, (_, i) => s.splits[b].first + i));
        expect(s.splits[b].count).toBe(mine.length > 1 ? mine.length : 0);
      });
      const slots = s.items.filter((w) => w.slot >= 0).map((w) => w.slot);
      expect(new Set(slots).size).toBe(slots.length);
      expect(s.numSlots).toBe(slots.length);
    });
  }

  it('balances: no piece costs more than a part, and the number of pieces stays near parts + b', () => {
    const parts = 64;
    const s = scheduleSplits(lengths, 64, parts, { fixedCost: 5 });
    for (const w of s.items) expect(Math.ceil((w.end - w.start) / 64) + 5).toBeLessThanOrEqual(Math.max(s.capacity, 6));
    expect(s.items.length).toBeLessThanOrEqual(parts + lengths.length);
    // A long sequence is split, short ones are not.
    expect(s.items.filter((w) => w.batch === 3).length).toBeGreaterThan(10);
    expect(s.items.filter((w) => w.batch === 4).length).toBe(1);
  });

  it('maxScheduleItems bounds the pieces of any seqlens up to the maximum (what a replayable schedule sizes its grid by)', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let tight = 0;
    for (let trial = 0; trial < 2000; trial++) {
      const b = 1 + Math.floor(rnd() * 12);
      const blockSize = [1, 4, 16, 64][Math.floor(rnd() * 4)];
      const maxLen = Math.floor(rnd() * 3000);
      const parts = 1 + Math.floor(rnd() * 200);
      const lens = Array.from({ length: b }, () => (rnd() < 0.2 ? maxLen : Math.floor(rnd() * (maxLen + 1))));
      const n = scheduleSplits(lens, blockSize, parts).items.length;
      const bound = maxScheduleItems(b, maxLen, blockSize, parts);
      expect(n).toBeLessThanOrEqual(bound);
      if (n === bound) tight++;
    }
    // The bound is reached, not just safe.
    expect(tight).toBeGreaterThan(0);
  });

  it('one part keeps every sequence whole; combineAll sends all through scratch', () => {
    expect(scheduleSplits(lengths, 64, 1).numSlots).toBe(0);
    const all = scheduleSplits([10, 0, 5], 16, 1, { combineAll: true });
    expect(all.items.map((w) => w.slot)).toEqual([0, 1, 2]);
    expect(all.splits).toEqual([{ first: 0, count: 1 }, { first: 1, count: 1 }, { first: 2, count: 1 }]);
  });

  it('refuses nonsense sizes', () => {
    expect(() => scheduleSplits([1], 0, 4)).toThrow(/blockSize and parts must be >= 1/);
  });
});

describe('BlockAllocator', () => {
  it('hands out slots block by block and builds block tables with invalid ids past the used blocks', () => {
    const a = new BlockAllocator(4, 4);
    expect(Array.from(a.append(1, 3))).toEqual([0, 1, 2]);
    expect(Array.from(a.append(2, 2))).toEqual([4, 5]);
    expect(Array.from(a.append(1, 3))).toEqual([3, 8, 9]);
    const t = a.table([1, 2], 3);
    expect(Array.from(t.blockTable)).toEqual([0, 2, INVALID_BLOCK, 1, INVALID_BLOCK, INVALID_BLOCK]);
    expect(Array.from(t.seqlens)).toEqual([6, 2]);
    expect(a.freeBlocks).toBe(1);
  });

  it('says how many blocks are missing when the cache is full, and changes nothing', () => {
    const a = new BlockAllocator(2, 4);
    a.append(0, 5);
    expect(() => a.append(1, 5)).toThrow(/sequence 1 needs 2 more blocks of 4 tokens .* only 0 of 2 are free/);
    expect(a.length(1)).toBe(0);
    a.release(0);
    expect(a.freeBlocks).toBe(2);
    expect(() => a.release(0)).toThrow(/sequence 0 holds no blocks/);
    expect(() => new BlockAllocator(0, 4)).toThrow(/numBlocks must be a positive integer/);
    expect(() => a.table([0, 1], 0)).not.toThrow();
  });

  it('refuses caches whose slots would not fit i32 before allocating anything; a huge one costs nothing until used', () => {
    const t0 = performance.now();
    expect(() => new BlockAllocator(1e9, 64)).toThrow('BlockAllocator: numBlocks * blockSize must be at most 2147483648 (cache slots are i32 on the GPU), got 64000000000');
    expect(() => new BlockAllocator(3, 2 ** 30)).toThrow(/numBlocks \* blockSize must be at most 2147483648 .*got 3221225472/);
    const a = new BlockAllocator(2 ** 31, 1);
    expect(Array.from(a.append(0, 3))).toEqual([0, 1, 2]);
    expect(a.freeBlocks).toBe(2 ** 31 - 3);
    const b = new BlockAllocator(2, 2 ** 30);
    b.append(0, 1);
    expect(Array.from(b.append(1, 1))).toEqual([2 ** 30]);
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('takes tokens back: blocks past the new length are freed and the next append reuses them', () => {
    const a = new BlockAllocator(4, 4);
    a.append(1, 5); // blocks 0, 1
    a.truncate(1, 4);
    expect(a.length(1)).toBe(4);
    expect(a.blocks(1)).toEqual([0]);
    expect(a.freeBlocks).toBe(3);
    expect(Array.from(a.append(1, 2))).toEqual([4, 5]); // block 1 again
    a.truncate(1, 5);
    expect(a.blocks(1)).toEqual([0, 1]);
    a.truncate(1, 0);
    expect(a.freeBlocks).toBe(4);
    expect(() => a.truncate(1, 1)).toThrow(/length must be an integer in 0..0 \(sequence 1's length\), got 1/);
    expect(() => a.truncate(2, 0)).toThrow(/sequence 2 holds no blocks/);
  });
});

describe('fp8 KV rows', () => {
  it("DeepSeek's layout is 656 bytes: 512 e4m3, 4 f32 scales, 64 bf16", () => {
    expect(kvLayout('t', 'fp8', 576, 512).rowElems).toBe(656);
    expect(kvLayout('t', 'fp8', 80, 64).rowElems).toBe(100);
    expect(() => kvLayout('t', 'fp8', 80, 62)).toThrow(/dv a multiple of 4/);
  });

  it('scales are the smallest power of two >= max(amax/448, 1e-4)', () => {
    expect(fp8TileScale(448)).toBe(1);
    expect(fp8TileScale(449)).toBe(2);
    expect(fp8TileScale(0)).toBe(2 ** -13);
    expect(fp8TileScale(1)).toBe(2 ** -8);
  });

  it('encodes and decodes a row within e4m3 precision, the bf16 part exactly', () => {
    const layout = kvLayout('t', 'fp8', 576, 512);
    const vals = Array.from({ length: 576 }, (_, i) => Math.sin(i) * (i < 128 ? 100 : 0.01));
    const back = decodeKvRow(layout, encodeKvRow(layout, vals));
    for (let i = 0; i < 512; i++) expect(Math.abs(back[i] - vals[i])).toBeLessThanOrEqual(Math.abs(vals[i]) / 16 + 2 ** -9 * fp8TileScale(i < 128 ? 100 : 0.01));
    for (let i = 512; i < 576; i++) expect(Math.abs(back[i] - vals[i])).toBeLessThanOrEqual(Math.abs(vals[i]) / 256);
  });
});

describe('mlaReference', () => {
  // Two keys, one head, d = dv = 1: softmax over scores q*k.
  const k = [[1], [2], [NaN]];
  const base = { b: 1, sQ: 2, hQ: 1, d: 1, dv: 1, hKv: 1, blockSize: 2, numRows: 4, k: (r: number) => k[r], softmaxScale: 1 };

  it('dense attention over the block table; causal s_q=2 hides the last key from the first token', () => {
    const r = mlaReference({ ...base, q: [1, 1], blockTable: [0, INVALID_BLOCK], maxBlocks: 2, cacheSeqlens: [2], causal: true });
    expect(r.out[0]).toBeCloseTo(1, 12);
    expect(r.lse[0]).toBeCloseTo(1, 12);
    const e1 = Math.exp(1);
    const e2 = Math.exp(2);
    expect(r.out[1]).toBeCloseTo((e1 + 2 * e2) / (e1 + e2), 12);
    expect(r.lse[1]).toBeCloseTo(Math.log(e1 + e2), 12);
  });

  it('sparse: -1 and out-of-cache ids skipped, topkLength 0 gives out 0 and lse +inf; attnSink scales out only', () => {
    const r = mlaReference({ ...base, sQ: 1, b: 2, q: [1, 1], indices: [1, -1, 99, 2], topk: 2, topkLength: [2, 0], attnSink: [0] });
    expect(r.lse[0]).toBeCloseTo(2, 12);
    expect(r.out[0]).toBeCloseTo(2 / (1 + Math.exp(-2)), 12);
    expect(r.out[1]).toBe(0);
    expect(r.lse[1]).toBe(Infinity);
  });
});
