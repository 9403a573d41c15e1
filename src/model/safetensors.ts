// safetensors headers: u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}, then the data. Every entry is
// checked against the file before any byte is uploaded: a truncated or corrupt file is named with
// the tensor that does not fit.
import { DeepwgslError } from '../gpu/errors.ts';
import type { ByteFile } from './source.ts';

/** The dtypes a checkpoint may hold, with their sizes. */
export const ST_DTYPE_BYTES = { F8_E4M3: 1, BF16: 2, F16: 2, F32: 4 } as const;
export type StDtype = keyof typeof ST_DTYPE_BYTES;

export interface StTensor {
  name: string;
  dtype: StDtype;
  shape: number[];
  /** Absolute byte offset in the file and length. */
  offset: number;
  byteLength: number;
  file: ByteFile;
}

export class SafetensorsError extends DeepwgslError {
  override name = 'SafetensorsError';
}

// The format's own cap on the header (100 MB) keeps a corrupt length from allocating gigabytes.
const MAX_HEADER = 100_000_000;

export async function readSafetensorsHeader(file: ByteFile): Promise<Map<string, StTensor>> {
  const err = (msg: string): never => {
    throw new SafetensorsError(`${file.name}: ${msg}`);
  };
  const size = await file.size();
  if (size < 8) err(`${size} bytes, too short for a safetensors header (8-byte length first)`);
  const lenBytes = await file.read(0, 8);
  const n = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
  if (n > MAX_HEADER) err(`header length ${n} is over the format's limit of ${MAX_HEADER} bytes: not a safetensors file, or corrupt`);
  if (8 + n > size) err(`header length ${n} runs past the end of the ${size}-byte file: truncated`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await file.read(8, n)));
  } catch (e) {
    return err(`header is not valid UTF-8 JSON (${(e as Error).message}): corrupt`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) err('header is not a JSON object');
  const dataStart = 8 + n;
  const dataSize = size - dataStart;
  const out = new Map<string, StTensor>();
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') continue;
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const where = `tensor '${name}'`;
    if (e === null || typeof e !== 'object') err(`${where}: entry is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in ST_DTYPE_BYTES)) {
      err(`${where}: dtype ${JSON.stringify(e.dtype)} is not supported (supported: ${Object.keys(ST_DTYPE_BYTES).join(', ')})`);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) err(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0) || offs[1] < offs[0]) {
      err(`${where}: data_offsets ${JSON.stringify(offs)} is not [begin, end] with 0 <= begin <= end`);
    }
    const dtype = e.dtype as StDtype;
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const [begin, end] = offs as [number, number];
    if (end - begin !== numel * ST_DTYPE_BYTES[dtype]) {
      err(`${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} [${(shape as number[]).join(', ')}] needs ${numel * ST_DTYPE_BYTES[dtype]}`);
    }
    if (end > dataSize) err(`${where}: data_offsets end ${end} is past the ${dataSize} data bytes of the file: truncated`);
    out.set(name, { name, dtype, shape: shape as number[], offset: dataStart + begin, byteLength: end - begin, file });
  }
  // Overlapping tensors mean a corrupt header (the format packs them without gaps or overlaps).
  const sorted = [...out.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].offset < sorted[i - 1].offset + sorted[i - 1].byteLength) err(`tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap: corrupt header`);
  }
  return out;
}

// Exponent bits all set: NaN or Inf (f32, bf16, f16).
const EXP_ALL = { F32: 0x7f800000, BF16: 0x7f80, F16: 0x7c00 } as const;

/** The first 32-bit word holding a NaN or Inf element (a tight loop per dtype: ~GB/s), or words.length. */
function firstBadWord(words: Uint32Array, dtype: StDtype): number {
  const n = words.length;
  let w = 0;
  if (dtype === 'F8_E4M3') {
    // A NaN code (0x7f, 0xff) is a zero byte of (w & 0x7f7f7f7f) ^ 0x7f7f7f7f.
    for (; w < n; w++) {
      const x = (words[w] & 0x7f7f7f7f) ^ 0x7f7f7f7f;
      if (((x - 0x01010101) & ~x & 0x80808080) !== 0) break;
    }
  } else if (dtype === 'F32') {
    for (; w < n; w++) if ((words[w] & 0x7f800000) === 0x7f800000) break;
  } else {
    const lo = EXP_ALL[dtype];
    const hi = lo << 16;
    for (; w < n; w++) {
      const x = words[w];
      if ((x & lo) === lo || (x & hi) === hi) break;
    }
  }
  return w;
}

/**
 * The index of the first NaN or Inf element of a tensor's raw bytes, or -1: e4m3 has NaN codes
 * (0x7f, 0xff) and no Inf; the other dtypes hold NaN or Inf where the exponent bits are all set.
 */
export function firstNonFinite(bytes: Uint8Array, dtype: StDtype): number {
  const size = ST_DTYPE_BYTES[dtype];
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const words = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >>> 2);
  const elem = (i: number) => (size === 1 ? aligned[i] : size === 2 ? aligned[2 * i] | (aligned[2 * i + 1] << 8) : words[i]);
  const bad = (v: number) => (dtype === 'F8_E4M3' ? (v & 0x7f) === 0x7f : (v & EXP_ALL[dtype]) === EXP_ALL[dtype]);
  const perWord = 4 / size;
  // Elements of the first bad word on, and those after the last whole word.
  for (let i = firstBadWord(words, dtype) * perWord; i < aligned.byteLength / size; i++) if (bad(elem(i))) return i;
  return -1;
}

export interface StEntry {
  name: string;
  dtype: StDtype;
  shape: number[];
}

/**
 * The bytes before a file's data (u64 length + JSON padded with spaces to 8 bytes, so the data
 * starts aligned) and where each entry's data lands: entries are packed in order, no gaps.
 */
export function encodeSafetensorsHeader(entries: readonly StEntry[]): { header: Uint8Array; dataBytes: number } {
  const json: Record<string, unknown> = {};
  let off = 0;
  for (const t of entries) {
    const n = t.shape.reduce((a, b) => a * b, 1) * ST_DTYPE_BYTES[t.dtype];
    json[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  json.__metadata__ = { format: 'pt' };
  const text = JSON.stringify(json);
  const len = new TextEncoder().encode(text).length;
  const h = new TextEncoder().encode(text + ' '.repeat((8 - (len % 8)) % 8));
  const header = new Uint8Array(8 + h.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(h.length), true);
  header.set(h, 8);
  return { header, dataBytes: off };
}

/** Builds a safetensors file in memory (tests); the synthetic generator streams the same header. */
export function writeSafetensors(tensors: (StEntry & { data: Uint8Array })[]): Uint8Array {
  const { header, dataBytes } = encodeSafetensorsHeader(tensors);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header);
  let at = header.length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}
