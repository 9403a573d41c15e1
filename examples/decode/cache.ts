// Weights fetched from a URL are kept in Cache Storage: the first read of a file downloads it whole
// (streamed to disk by the browser), later reads and page reloads slice the cached copy.
import { urlSource, type ModelSource } from '../../src/index.ts';

const CACHE = 'deepwgsl-weights-v1';

export async function cachedUrlSource(base: string, onDownload?: (file: string, done: number, total: number) => void): Promise<ModelSource> {
  const inner = urlSource(base);
  if (typeof caches === 'undefined') return inner; // not a secure context: plain range requests
  const cache = await caches.open(CACHE);
  const blobs = new Map<string, Promise<Blob>>();
  const blobOf = (url: string) => {
    let p = blobs.get(url);
    if (!p) {
      p = (async () => {
        const hit = await cache.match(url);
        if (hit) return hit.blob();
        const r = await fetch(url);
        if (!r.ok || !r.body) throw new Error(`${url}: HTTP ${r.status}`);
        const total = Number(r.headers.get('content-length')) || 0;
        let done = 0;
        const counted = r.body.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, c) {
              done += chunk.byteLength;
              onDownload?.(url, done, total);
              c.enqueue(chunk);
            },
          }),
        );
        await cache.put(url, new Response(counted, { headers: r.headers }));
        return (await cache.match(url))!.blob();
      })();
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
      const url = inner.open(name).name;
      return {
        name: url,
        size: async () => (await blobOf(url)).size,
        read: async (offset, length) => new Uint8Array(await (await blobOf(url)).slice(offset, offset + length).arrayBuffer()),
      };
    },
  };
}
