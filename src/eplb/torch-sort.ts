// The order in which PyTorch's CPU `tensor.sort(descending=True)` (stable=False) returns indices,
// ties included. eplb.py's balanced_packing walks items in that order, and ties are routine there
// (replicas of one expert carry equal loads), so a stable sort would give a different plan.
//
// PyTorch's sort kernel (aten/src/ATen/native/cpu/SortingKernel.cpp) sorts (value, index) pairs
// with std::sort and a `a > b` comparator when x86-simd-sort is not used. libstdc++'s std::sort is
// an introsort: median-of-three quicksort down to runs of 16, heapsort past a depth of 2*lg(n),
// then one insertion sort. Below 17 items that is a plain insertion sort, i.e. stable; above, ties
// come out in a scrambled but deterministic order. This file replays libstdc++'s steps exactly.
// Checked against torch 2.11 (CPU capability AVX512) on the accelerator machine: see
// tests/fixtures/eplb/upstream.json (meta.tie_sort_probe) and tests/eplb.test.ts.

type Less = (a: number, b: number) => boolean;

const THRESHOLD = 16;

/** Indices of `values` in the order torch's unstable descending CPU sort gives them. */
export function torchSortDescendingIndices(values: ArrayLike<number>): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  // Compares items by value only (NaN first, as torch's descending comparator does).
  const less: Less = (a, b) => (Number.isNaN(values[a]) && !Number.isNaN(values[b])) || values[a] > values[b];
  introsort(idx, less);
  return idx;
}

/** libstdc++ std::sort on a[0..n) with strict weak order `less`. Exported for tests. */
export function introsort(a: number[], less: Less, depthLimit = 2 * Math.floor(Math.log2(Math.max(1, a.length)))): void {
  if (a.length === 0) return;
  introsortLoop(a, 0, a.length, depthLimit, less);
  finalInsertionSort(a, 0, a.length, less);
}

function swap(a: number[], i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

function introsortLoop(a: number[], first: number, last: number, depth: number, less: Less): void {
  while (last - first > THRESHOLD) {
    if (depth === 0) {
      heapSort(a, first, last, less);
      return;
    }
    depth--;
    const cut = partitionPivot(a, first, last, less);
    introsortLoop(a, cut, last, depth, less);
    last = cut;
  }
}

function partitionPivot(a: number[], first: number, last: number, less: Less): number {
  const mid = first + ((last - first) >> 1);
  moveMedianToFirst(a, first, first + 1, mid, last - 1, less);
  // Unguarded partition of [first+1, last) around the pivot now at `first`.
  let lo = first + 1;
  let hi = last;
  for (;;) {
    while (less(a[lo], a[first])) lo++;
    hi--;
    while (less(a[first], a[hi])) hi--;
    if (!(lo < hi)) return lo;
    swap(a, lo, hi);
    lo++;
  }
}

function moveMedianToFirst(arr: number[], result: number, a: number, b: number, c: number, less: Less): void {
  const [va, vb, vc] = [arr[a], arr[b], arr[c]];
  let pick: number;
  if (less(va, vb)) pick = less(vb, vc) ? b : less(va, vc) ? c : a;
  else pick = less(va, vc) ? a : less(vb, vc) ? c : b;
  swap(arr, result, pick);
}

function finalInsertionSort(a: number[], first: number, last: number, less: Less): void {
  if (last - first > THRESHOLD) {
    insertionSort(a, first, first + THRESHOLD, less);
    for (let i = first + THRESHOLD; i < last; i++) linearInsert(a, i, less);
  } else {
    insertionSort(a, first, last, less);
  }
}

function insertionSort(a: number[], first: number, last: number, less: Less): void {
  for (let i = first + 1; i < last; i++) {
    if (less(a[i], a[first])) {
      const v = a[i];
      for (let j = i; j > first; j--) a[j] = a[j - 1];
      a[first] = v;
    } else {
      linearInsert(a, i, less);
    }
  }
}

/** Moves a[i] left past every element it is less than (a smaller element is known to exist on the left). */
function linearInsert(a: number[], i: number, less: Less): void {
  const v = a[i];
  let j = i;
  while (less(v, a[j - 1])) {
    a[j] = a[j - 1];
    j--;
  }
  a[j] = v;
}

// Heapsort fallback (std::make_heap then std::sort_heap), offsets relative to `first`.
function heapSort(a: number[], first: number, last: number, less: Less): void {
  const len = last - first;
  if (len >= 2) {
    for (let parent = (len - 2) >> 1; parent >= 0; parent--) adjustHeap(a, first, parent, len, a[first + parent], less);
  }
  for (let end = len - 1; end > 0; end--) {
    const v = a[first + end];
    a[first + end] = a[first];
    adjustHeap(a, first, 0, end, v, less);
  }
}

function adjustHeap(a: number[], base: number, hole: number, len: number, value: number, less: Less): void {
  const top = hole;
  let child = hole;
  while (child < (len - 1) >> 1) {
    child = 2 * (child + 1);
    if (less(a[base + child], a[base + child - 1])) child--;
    a[base + hole] = a[base + child];
    hole = child;
  }
  if ((len & 1) === 0 && child === (len - 2) >> 1) {
    child = 2 * (child + 1);
    a[base + hole] = a[base + child - 1];
    hole = child - 1;
  }
  // push_heap: sift the value up from the hole, no higher than `top`.
  let parent = (hole - 1) >> 1;
  while (hole > top && less(a[base + parent], value)) {
    a[base + hole] = a[base + parent];
    hole = parent;
    parent = (hole - 1) >> 1;
  }
  a[base + hole] = value;
}
