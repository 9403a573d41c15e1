// Where checkpoint files come from: a directory path in Node and Deno (node:fs, which Deno also
// provides), or in a browser a set of File objects (a directory picker) or a base URL (HTTP range
// requests). Only byte ranges are read, so a shard never has to fit in memory at once. Every name
// is checked to stay inside the folder or URL prefix (an index may name its shards, and a hostile
// one names /etc/passwd or another origin).
import { DeepwgslError, fail } from '../gpu/errors.ts';

export interface ByteFile {
  readonly name: string;
  size(): Promise<number>;
  /** Exactly `length` bytes from `offset`; fewer means the file is shorter than the header claims. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export interface ModelSource {
  /** Shown in messages: the directory or URL. */
  readonly where: string;
  has(name: string): Promise<boolean>;
  open(name: string): ByteFile;
  /** File names, where the source can list them (a URL cannot). */
  list(): Promise<string[] | undefined>;
}

/** A JSON file a checkpoint carries (config, shard index, tokenizer) is read whole: an index lists a tensor in ~100 bytes, so 64 MiB holds ten times DeepSeek-V3's ~92k. */
export const MAX_JSON_BYTES = 64 * 2 ** 20;

// Parts of a relative name: no empty, '.' or '..' part, no scheme, query, escape or backslash.
const SAFE_NAME = /^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*(\/[A-Za-z0-9_+-][A-Za-z0-9_.+-]*)*$/;

/** Whether `name` names a file inside the folder: relative parts of letters, digits and _ . + -, none starting with a dot. */
export const isSafeFileName = (name: unknown): name is string => typeof name === 'string' && SAFE_NAME.test(name);

/** `name` if it is a safe file name (isSafeFileName), else an error naming `where`. */
export function checkFileName(where: string, name: unknown): string {
  if (!isSafeFileName(name)) {
    fail(where, 'a file name', "a relative name inside the model folder (parts of letters, digits and _ . + -, joined by '/', none starting with '.')", name);
  }
  return name as string;
}

/** A file's text, refused before reading when it is over `maxBytes`. */
export async function readText(src: ModelSource, name: string, maxBytes = MAX_JSON_BYTES): Promise<string> {
  const f = src.open(name);
  const size = await f.size();
  if (size > maxBytes) throw new DeepwgslError(`${f.name}: ${size} bytes, over the ${maxBytes}-byte limit for a file read whole; not a checkpoint's ${name}`);
  return new TextDecoder().decode(await f.read(0, size));
}

type NodeFs = typeof import('node:fs/promises');
let fsPromise: Promise<NodeFs> | undefined;
const nodeFs = () => (fsPromise ??= import('node:fs/promises'));

/** A directory on disk (Node, Deno). Symbolic links are followed (a Hugging Face cache snapshot is links into its blobs). */
export function dirSource(dir: string): ModelSource {
  const join = (name: string) => `${dir.replace(/\/+$/, '')}/${name}`;
  const path = (name: string) => join(checkFileName(dir, name));
  const isFile = async (p: string) => (await (await nodeFs()).stat(p).catch(() => undefined))?.isFile() === true;
  // node:fs messages (EISDIR, EACCES) do not always say which file.
  const named = async <T>(p: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw new DeepwgslError(`${p}: cannot read (${(e as Error).message})`);
    }
  };
  return {
    where: dir,
    has: async (name) => isFile(path(name)),
    async list() {
      const names = await named(dir, async () => (await nodeFs()).readdir(dir));
      const files: string[] = [];
      for (const n of names) if (await isFile(join(n))) files.push(n);
      return files;
    },
    open(name) {
      const p = path(name);
      return {
        name: p,
        size: () => named(p, async () => (await (await nodeFs()).stat(p)).size),
        read: (offset, length) =>
          named(p, async () => {
            const fh = await (await nodeFs()).open(p, 'r');
            try {
              const buf = new Uint8Array(length);
              let done = 0;
              while (done < length) {
                const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
                if (bytesRead === 0) break;
                done += bytesRead;
              }
              return done === length ? buf : buf.subarray(0, done);
            } finally {
              await fh.close();
            }
          }),
      };
    },
  };
}

/** Where a picked file sits in the picked folder: its path under the folder (webkitRelativePath less the folder's own name), else its name. */
function pickedPath(f: File): string {
  const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath;
  return rel ? rel.slice(rel.indexOf('/') + 1) : f.name;
}

/** Files picked in a browser (<input type=file webkitdirectory>), keyed by their paths in the picked folder. */
export function filesSource(files: Iterable<File>, where = 'picked files'): ModelSource {
  const byName = new Map<string, File>();
  for (const f of files) {
    const p = pickedPath(f);
    if (byName.has(p)) throw new DeepwgslError(`${where}: two picked files are both '${p}'; pick one folder`);
    byName.set(p, f);
  }
  return {
    where,
    has: async (name) => byName.has(checkFileName(where, name)),
    list: async () => [...byName.keys()],
    open(name) {
      const f = byName.get(checkFileName(where, name));
      if (!f) throw new DeepwgslError(`${where}: no file '${name}' among the picked files`);
      return {
        name,
        size: async () => f.size,
        read: async (offset, length) => new Uint8Array(await f.slice(offset, offset + length).arrayBuffer()),
      };
    },
  };
}

/** A response body, at most `max` bytes (more is an error: a server answering with more than was asked is not read to its end). */
async function bodyBytes(r: Response, max: number, what: string): Promise<Uint8Array> {
  if (!r.body) return new Uint8Array(0);
  const out = new Uint8Array(max);
  let done = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { done: end, value } = await reader.read();
    if (end) return out.subarray(0, done);
    if (done + value.byteLength > max) {
      await reader.cancel();
      throw new DeepwgslError(`${what}: the server sent more than the ${max} bytes asked for`);
    }
    out.set(value, done);
    done += value.byteLength;
  }
}

/**
 * Files under a base URL, read with HTTP range requests: a server that ignores Range is refused at
 * the first read (its reply is cancelled, not downloaded), since every header read would fetch a whole shard.
 */
export function urlSource(base: string): ModelSource {
  const prefix = new URL(base.endsWith('/') ? base : `${base}/`).href;
  const url = (name: string) => {
    const u = new URL(checkFileName(base, name), prefix).href;
    // The name check keeps it there; this says so where it matters.
    if (!u.startsWith(prefix)) fail(base, 'a file name', `a name that resolves under ${prefix}`, name);
    return u;
  };
  return {
    where: base,
    async has(name) {
      return (await fetch(url(name), { method: 'HEAD' })).ok;
    },
    async list() {
      return undefined;
    },
    open(name) {
      const u = url(name);
      return {
        name: u,
        async size() {
          const r = await fetch(u, { method: 'HEAD' });
          if (!r.ok) throw new DeepwgslError(`${u}: HTTP ${r.status}`);
          const n = Number(r.headers.get('content-length') ?? NaN);
          if (!Number.isSafeInteger(n) || n < 0) throw new DeepwgslError(`${u}: the server gave no Content-Length for HEAD, so the file's size is unknown`);
          return n;
        },
        async read(offset, length) {
          if (length === 0) return new Uint8Array(0);
          const range = `bytes ${offset}..${offset + length - 1}`;
          const r = await fetch(u, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
          if (!r.ok) {
            await r.body?.cancel();
            throw new DeepwgslError(`${u}: HTTP ${r.status} for ${range}`);
          }
          // 200 is the whole file: fine where that is what was asked, else refused before its body is read.
          if (r.status !== 206 && !(offset === 0 && Number(r.headers.get('content-length')) === length)) {
            await r.body?.cancel();
            throw new DeepwgslError(
              `${u}: the server ignored the Range request for ${range} (HTTP ${r.status}, not 206 Partial Content); ` +
                'loading from a URL reads byte ranges, so the whole-file download was refused: serve the folder with Range support, or download it and load it from disk',
            );
          }
          const from = r.headers.get('content-range');
          if (r.status === 206 && from !== null && !from.startsWith(`bytes ${offset}-`)) {
            await r.body?.cancel();
            throw new DeepwgslError(`${u}: asked for ${range}, the server sent '${from}'`);
          }
          return bodyBytes(r, length, `${u} (${range})`);
        },
      };
    },
  };
}
