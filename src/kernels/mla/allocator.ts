// Host-side block allocator for the paged KV cache: sequences own lists of blocks, grown as tokens
// arrive; block tables and slot numbers (block * blockSize + offset) come from here.
import { DeepwgslError, fail } from '../../gpu/errors.ts';

/** The block id written past a sequence's used blocks (upstream's tests use the same kind of value): never read. */
export const INVALID_BLOCK = 2147480000;

/** Cache slots (block * blockSize + offset) are i32 on the GPU: at most this many. */
export const MAX_CACHE_SLOTS = 2 ** 31;

export class BlockAllocator {
  /** Released blocks, popped from the end before untouched ones. */
  private readonly free: number[] = [];
  /** Blocks next.. numBlocks - 1 were never handed out (kept as a count: a free list of them would cost memory per block). */
  private next = 0;
  private readonly seqs = new Map<number, { blocks: number[]; length: number }>();

  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) fail('BlockAllocator', 'numBlocks', 'a positive integer', numBlocks);
    if (!Number.isInteger(blockSize) || blockSize < 1) fail('BlockAllocator', 'blockSize', 'a positive integer', blockSize);
    if (numBlocks * blockSize > MAX_CACHE_SLOTS) fail('BlockAllocator', 'numBlocks * blockSize', `at most ${MAX_CACHE_SLOTS} (cache slots are i32 on the GPU)`, numBlocks * blockSize);
  }

  get freeBlocks(): number {
    return this.free.length + this.numBlocks - this.next;
  }

  length(seq: number): number {
    return this.seqs.get(seq)?.length ?? 0;
  }

  blocks(seq: number): readonly number[] {
    return this.seqs.get(seq)?.blocks ?? [];
  }

  /** Grows `seq` by `n` tokens and returns their cache slots; all-or-nothing when blocks run out. */
  append(seq: number, n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0) throw new DeepwgslError(`BlockAllocator.append: n must be a non-negative integer, got ${n}`);
    const s = this.seqs.get(seq) ?? { blocks: [], length: 0 };
    const need = Math.ceil((s.length + n) / this.blockSize) - s.blocks.length;
    if (need > this.freeBlocks) {
      throw new DeepwgslError(
        `BlockAllocator: sequence ${seq} needs ${need} more blocks of ${this.blockSize} tokens for ${n} new tokens (length ${s.length}), ` +
          `but only ${this.freeBlocks} of ${this.numBlocks} are free; release finished sequences or allocate a larger cache`,
      );
    }
    for (let i = 0; i < need; i++) s.blocks.push(this.free.pop() ?? this.next++);
    const slots = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const pos = s.length + i;
      slots[i] = s.blocks[Math.floor(pos / this.blockSize)] * this.blockSize + (pos % this.blockSize);
    }
    s.length += n;
    this.seqs.set(seq, s);
    return slots;
  }

  /** Shortens `seq` to its first `length` tokens, freeing the blocks past them (a step taken back). */
  truncate(seq: number, length: number): void {
    const s = this.seqs.get(seq);
    if (!s) throw new DeepwgslError(`BlockAllocator.truncate: sequence ${seq} holds no blocks`);
    if (!Number.isInteger(length) || length < 0 || length > s.length) throw new DeepwgslError(`BlockAllocator.truncate: length must be an integer in 0..${s.length} (sequence ${seq}'s length), got ${length}`);
    this.recycle(s.blocks.splice(Math.ceil(length / this.blockSize)));
    s.length = length;
  }

  release(seq: number): void {
    const s = this.seqs.get(seq);
    if (!s) throw new DeepwgslError(`BlockAllocator.release: sequence ${seq} holds no blocks`);
    this.recycle(s.blocks);
    this.seqs.delete(seq);
  }

  /** Blocks back to the free list, last first (a loop: spreading a long sequence's blocks would overflow the call stack). */
  private recycle(blocks: number[]): void {
    for (let i = blocks.length - 1; i >= 0; i--) this.free.push(blocks[i]);
  }

  /** [seqs.length, maxBlocks] block table (INVALID_BLOCK past each sequence's blocks) and the seqlens. */
  table(seqs: readonly number[], maxBlocks?: number): { blockTable: Int32Array; seqlens: Int32Array; maxBlocks: number } {
    const width = maxBlocks ?? Math.max(1, ...seqs.map((q) => this.blocks(q).length));
    const blockTable = new Int32Array(seqs.length * width).fill(INVALID_BLOCK);
    seqs.forEach((q, i) => {
      const b = this.blocks(q);
      if (b.length > width) throw new DeepwgslError(`BlockAllocator.table: sequence ${q} holds ${b.length} blocks, over maxBlocks ${width}`);
      blockTable.set(b, i * width);
    });
    return { blockTable, seqlens: Int32Array.from(seqs, (q) => this.length(q)), maxBlocks: width };
  }
}
