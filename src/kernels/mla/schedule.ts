// Split-KV scheduling on the CPU, FlashMLA's idea: the work of a batch (blocks of each sequence plus a
// fixed cost per sequence for setup and the combine) is cut into about `parts` equal pieces, walking
// the sequences in order, so one long sequence is split over several workgroups and short ones share
// nothing. Each piece becomes one work item (one workgroup per kv head and q-row tile); sequences cut
// into several pieces are merged afterwards by the combine pass through their lse.

export interface MlaWorkItem {
  batch: number;
  /** KV positions [start, end) of the sequence this item attends over. */
  start: number;
  end: number;
  /** Scratch slot of this partial result, or -1 when the item is the whole sequence and writes `out` itself. */
  slot: number;
}

export interface MlaSchedule {
  items: MlaWorkItem[];
  /** Per batch: the first scratch slot and the number of pieces to combine (0: written directly). */
  splits: { first: number; count: number }[];
  numSlots: number;
  /** The capacity of one part, in blocks of cost. */
  capacity: number;
  /** Positions per block of cost (the blockSize given). */
  unit: number;
}

export interface ScheduleOptions {
  /** Fixed cost of each piece, in blocks (upstream uses 5). */
  fixedCost?: number;
  /** Route every sequence through the combine pass (needed where the combine applies attnSink). */
  combineAll?: boolean;
}

export function scheduleSplits(lengths: ArrayLike<number>, blockSize: number, parts: number, opts: ScheduleOptions = {}): MlaSchedule {
  const fixed = opts.fixedCost ?? 5;
  if (!(blockSize >= 1 && parts >= 1)) throw new Error(`scheduleSplits: blockSize and parts must be >= 1, got ${blockSize}, ${parts}`);
  const blocks = Array.from(lengths, (n) => Math.ceil(Math.max(0, n) / blockSize));
  const total = blocks.reduce((a, n) => a + n + fixed, 0);
  // As upstream: a part holds its share of the total plus one more fixed cost, since every piece pays one.
  const capacity = Math.ceil(total / parts) + fixed;
  const pieces: [number, number, number][] = [];
  let room = capacity;
  blocks.forEach((nb, b) => {
    let at = 0;
    do {
      // Not room for a useful piece here: start the next part.
      if (room <= fixed && room < capacity) room = capacity;
      const take = Math.min(nb - at, Math.max(1, room - fixed));
      pieces.push([b, at, at + take]);
      at += take;
      room -= take + fixed;
    } while (at < nb);
  });
  const count = new Array<number>(blocks.length).fill(0);
  for (const [b] of pieces) count[b]++;
  const splits = count.map(() => ({ first: 0, count: 0 }));
  let numSlots = 0;
  const items = pieces.map(([b, s, e]): MlaWorkItem => {
    const len = Math.max(0, lengths[b]);
    const item = { batch: b, start: Math.min(len, s * blockSize), end: Math.min(len, e * blockSize), slot: -1 };
    if (count[b] > 1 || opts.combineAll) {
      if (splits[b].count === 0) splits[b].first = numSlots;
      splits[b].count++;
      item.slot = numSlots++;
    }
    return item;
  });
  return { items, splits, numSlots, capacity, unit: blockSize };
}

/**
 * The most pieces scheduleSplits makes for b sequences of at most maxLen tokens: parts + b (only a
 * part's last piece can stop short of its sequence's end, and each part that ends so holds at least
 * total / parts of cost), and one piece per block (one per empty sequence).
 */
export function maxScheduleItems(b: number, maxLen: number, blockSize: number, parts: number): number {
  return Math.min(parts + b, b * Math.max(1, Math.ceil(maxLen / blockSize)));
}
