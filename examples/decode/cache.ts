// Weights fetched from a URL are kept in Cache Storage: the first read of a file downloads it whole
// (streamed to disk by the browser), later reads and page reloads slice the cached copy. A cached
// file is revalidated once per page (HEAD: a changed ETag, Last-Modified or size downloads it
// again; a file gone from the server is dropped), and downloads stay within a quota: the oldest are
// evicted first, and a file larger than the quota is read with range requests instead of cached.
import { urlSource, type ModelSource } from '../../src/index.ts';

const CACHE = 'deepwgsl-weights-v1';
/** When a file was stored (ms since the epoch), kept among its cached headers: eviction goes oldest first. */
const STORED_AT = 'x-deepwgsl-stored-at';
/** Cached downloads take at most this share of the origin's storage: past the origin's quota the browser may drop all of it. */
const QUOTA_SHARE = 0.5;
/** The quota where the browser gives no storage estimate. */
const FALLBACK_QUOTA = 2 * 2 ** 30;
/** Headers that tell a file's version: compared in this order, the first both copies have decides. */
const VALIDATORS = ['etag', 'last-modified', 'content-length'];

export interface CacheUsage {
  /** Bytes and files of the cached downloads, and the quota they are kept within. */
  bytes: number;
  files: number;
  quota: number;
}

/** The bytes the cache may hold: QUOTA_SHARE of the origin's quota. */
export async function cacheQuota(): Promise<number> {
  const estimate = await globalThis.navigator?.storage?.estimate?.().catch(() => undefined);
  return estimate?.quota ? Math.floor(estimate.quota * QUOTA_SHARE) : FALLBACK_QUOTA;
}

/** Each cached file's URL, size and time stored, oldest first. */
async function entries(cache: Cache): Promise<{ url: string; bytes: number; at: number }[]> {
  const all = await Promise.all(
    (await cache.keys()).map(async (req) => {
      const r = await cache.match(req);
      return { url: req.url, bytes: r ? (await r.blob()).size : 0, at: Number(r?.headers.get(STORED_AT) ?? 0) };
    }),
  );
  return all.sort((a, b) => a.at - b.at);
}

export async function cacheUsage(quota?: number): Promise<CacheUsage> {
  const list = typeof caches === 'undefined' ? [] : await entries(await caches.open(CACHE));
  return { bytes: list.reduce((a, e) => a + e.bytes, 0), files: list.length, quota: quota ?? (await cacheQuota()) };
}

export async function clearCachedModels(): Promise<void> {
  if (typeof caches !== 'undefined') await caches.delete(CACHE);
}

/** Whether the server's copy differs from the cached one, by the first validator both carry (none: assumed the same). */
function changed(cached: Headers, now: Headers): boolean {
  for (const h of VALIDATORS) {
    const [a, b] = [cached.get(h), now.get(h)];
    if (a !== null && b !== null) return a !== b;
  }
  return false;
}

export interface CachedUrlOptions {
  /** Bytes the cache may hold (default: cacheQuota()). */
  quota?: number;
  onDownload?: (file: string, done: number, total: number) => void;
}

export async function cachedUrlSource(base: string, opts: CachedUrlOptions = {}): Promise<ModelSource> {
  const inner = urlSource(base);
  if (typeof caches === 'undefined') return inner; // not a secure context: plain range requests
  const cache = await caches.open(CACHE);
  const quota = opts.quota ?? (await cacheQuota());

  // Per file, once per source: its cached (or downloaded) blob, or undefined for range reads.
  const blobs = new Map<string, Promise<Blob | undefined>>();

  /** The cached copy, revalidated: undefined where there is none or the server's differs (it is dropped then). */
  const fresh = async (url: string): Promise<Response | undefined> => {
    const hit = await cache.match(url);
    if (!hit) return undefined;
    let head: Response;
    try {
      head = await fetch(url, { method: 'HEAD' });
    } catch {
      return hit; // offline: the cached copy is all there is
    }
    if (head.ok && !changed(hit.headers, head.headers)) return hit;
    await cache.delete(url);
    if (!head.ok) throw new Error(`${url}: HTTP ${head.status} (its cached copy was dropped)`);
    return undefined;
  };

  /**
   * Evicts the oldest cached files until `bytes` more fit the quota; files this source reads are
   * kept (its blobs slice them). False where they cannot fit.
   */
  const makeRoom = async (bytes: number): Promise<boolean> => {
    const all = await entries(cache);
    let used = all.reduce((a, e) => a + e.bytes, 0);
    for (const e of all.filter((x) => !blobs.has(x.url))) {
      if (used + bytes <= quota) break;
      await cache.delete(e.url);
      used -= e.bytes;
    }
    return used + bytes <= quota;
  };

  /** Downloads `url` into the cache; undefined where it does not fit the quota (it is read by ranges then). */
  const download = async (url: string): Promise<Blob | undefined> => {
    const r = await fetch(url);
    if (!r.ok || !r.body) throw new Error(`${url}: HTTP ${r.status}`);
    const size = Number(r.headers.get('content-length')) || 0;
    if (!(await makeRoom(size))) {
      await r.body.cancel();
      return undefined;
    }
    let done = 0;
    const counted = r.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, c) {
          done += chunk.byteLength;
          opts.onDownload?.(url, done, size);
          c.enqueue(chunk);
        },
      }),
    );
    const headers = new Headers(r.headers);
    headers.set(STORED_AT, String(Date.now()));
    await cache.put(url, new Response(counted, { headers }));
    // Without a Content-Length the size is known only now, the file stored (and counted) already.
    if (!size && !(await makeRoom(0))) {
      await cache.delete(url);
      return undefined;
    }
    return (await cache.match(url))!.blob();
  };

  const blobOf = (url: string) => {
    let p = blobs.get(url);
    if (!p) {
      p = fresh(url).then(async (hit) => (hit ? hit.blob() : download(url)));
      blobs.set(url, p);
      p.catch(() => blobs.delete(url));
    }
    return p;
  };
  return {
    where: base,
    // A cached file existed: only uncached names cost a request.
    has: async (name) => (await cache.match(inner.open(name).name)) !== undefined || inner.has(name),
    list: () => inner.list(),
    open(name) {
      const file = inner.open(name);
      return {
        name: file.name,
        size: async () => (await blobOf(file.name))?.size ?? file.size(),
        async read(offset, length) {
          const blob = await blobOf(file.name);
          return blob ? new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()) : file.read(offset, length);
        },
      };
    },
  };
}
