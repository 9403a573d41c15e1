// Where checkpoint files come from: a directory path in Node and Deno (node:fs, which Deno also
// provides), or in a browser a set of File objects (a directory picker) or a base URL (HTTP range
// requests). Only byte ranges are read, so a shard never has to fit in memory at once.
import { DeepwgslError } from '../gpu/errors.ts';

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

export async function readText(src: ModelSource, name: string): Promise<string> {
  const f = src.open(name);
  return new TextDecoder().decode(await f.read(0, await f.size()));
}

type NodeFs = typeof import('node:fs/promises');
let fsPromise: Promise<NodeFs> | undefined;
const nodeFs = () => (fsPromise ??= import('node:fs/promises'));

/** A directory on disk (Node, Deno). */
export function dirSource(dir: string): ModelSource {
  const path = (name: string) => `${dir.replace(/\/+$/, '')}/${name}`;
  return {
    where: dir,
    async has(name) {
      try {
        return (await (await nodeFs()).stat(path(name))).isFile();
      } catch {
        return false;
      }
    },
    async list() {
      return (await nodeFs()).readdir(dir);
    },
    open(name) {
      const p = path(name);
      return {
        name: p,
        async size() {
          return (await (await nodeFs()).stat(p)).size;
        },
        async read(offset, length) {
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
        },
      };
    },
  };
}

/** Files picked in a browser (e.g. <input type=file webkitdirectory>), keyed by their base names. */
export function filesSource(files: Iterable<File>, where = 'picked files'): ModelSource {
  const byName = new Map<string, File>();
  for (const f of files) byName.set(f.name, f);
  return {
    where,
    async has(name) {
      return byName.has(name);
    },
    async list() {
      return [...byName.keys()];
    },
    open(name) {
      const f = byName.get(name);
      if (!f) throw new DeepwgslError(`${where}: no file '${name}' among the picked files`);
      return {
        name,
        size: async () => f.size,
        read: async (offset, length) => new Uint8Array(await f.slice(offset, offset + length).arrayBuffer()),
      };
    },
  };
}

/** Files under a base URL, read with HTTP range requests. */
export function urlSource(base: string): ModelSource {
  const url = (name: string) => new URL(name, base.endsWith('/') ? base : `${base}/`).href;
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
          return Number(r.headers.get('content-length'));
        },
        async read(offset, length) {
          if (length === 0) return new Uint8Array(0);
          const r = await fetch(u, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
          if (!r.ok) throw new DeepwgslError(`${u}: HTTP ${r.status} for bytes ${offset}..${offset + length - 1}`);
          const b = new Uint8Array(await r.arrayBuffer());
          // A server that ignores Range sends the whole file.
          return r.status === 206 ? b : b.subarray(offset, offset + length);
        },
      };
    },
  };
}
