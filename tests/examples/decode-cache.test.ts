// The decode page's download cache (examples/decode/cache.ts) against a local server, over an
// in-memory Cache Storage: revalidation by ETag, eviction oldest first past the quota, files over
// the quota read by ranges, files gone from the server dropped, and the clear control.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedUrlSource, cacheUsage, clearCachedModels } from '../../examples/decode/cache.ts';

/** Cache Storage as a browser keeps it, in memory: bodies and headers by URL, in insertion order. */
class MemCache {
  readonly entries = new Map<string, { body: Uint8Array; headers: [string, string][] }>();
  private key = (r: RequestInfo | URL) => (typeof r === 'string' ? r : r instanceof URL ? r.href : r.url);
  async match(r: RequestInfo | URL) {
    const e = this.entries.get(this.key(r));
    return e && new Response(e.body.slice(), { headers: e.headers });
  }
  async put(r: RequestInfo | URL, res: Response) {
    this.entries.set(this.key(r), { body: new Uint8Array(await res.arrayBuffer()), headers: [...res.headers] });
  }
  async delete(r: RequestInfo | URL) {
    return this.entries.delete(this.key(r));
  }
  async keys() {
    return [...this.entries.keys()].map((u) => new Request(u));
  }
}
const stores = new Map<string, MemCache>();
const g = globalThis as { caches?: unknown };
beforeAll(() => {
  g.caches = { open: async (n: string) => stores.get(n) ?? stores.set(n, new MemCache()).get(n)!, delete: async (n: string) => stores.delete(n) };
});
afterAll(() => delete g.caches);

// Files of 1000 bytes (big: 5000), each byte its version; ETag "v<version>"; Range honoured.
const versions: Record<string, number> = { a: 1, b: 1, c: 1, x: 1, y: 1, z: 1, big: 1 };
const requests: string[] = [];
let server: Server;
let base = '';
beforeAll(async () => {
  server = createServer((req, res) => {
    const name = req.url!.replace(/^\/m\//, '');
    const range = req.headers.range;
    requests.push(`${req.method} ${name}${range ? ` ${range}` : ''}`);
    if (!(name in versions)) return res.writeHead(404).end();
    const body = new Uint8Array(name === 'big' ? 5000 : 1000).fill(versions[name]);
    const headers = { etag: `"v${versions[name]}"`, 'content-length': body.length };
    const m = /bytes=(\d+)-(\d+)/.exec(range ?? '');
    if (m && req.method === 'GET') {
      const part = body.subarray(Number(m[1]), Number(m[2]) + 1);
      return res.writeHead(206, { ...headers, 'content-length': part.length, 'content-range': `bytes ${m[1]}-${m[2]}/${body.length}` }).end(part);
    }
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}/m/`;
});
afterAll(() => server.close());

const quota = 2500;
const read = async (name: string) => (await (await cachedUrlSource(base, { quota })).open(name).read(0, 4))[0];
const taken = () => requests.splice(0);
const later = () => new Promise((r) => setTimeout(r, 5));
const cachedNames = () => [...stores.get('deepwgsl-weights-v1')!.entries.keys()].map((u) => u.slice(base.length)).sort();

describe('decode page download cache', () => {
  it('downloads once; a reload revalidates with HEAD; a changed ETag downloads again', async () => {
    expect(await read('a')).toBe(1);
    expect(taken()).toEqual(['GET a']);
    expect(await read('a')).toBe(1);
    expect(taken()).toEqual(['HEAD a']);
    versions.a = 2;
    expect(await read('a')).toBe(2);
    expect(taken()).toEqual(['HEAD a', 'GET a']);
    expect(await cacheUsage(quota)).toEqual({ bytes: 1000, files: 1, quota });
  });

  it('evicts the oldest downloads past the quota', async () => {
    await later();
    await read('b');
    await later();
    await read('c');
    expect(cachedNames()).toEqual(['b', 'c']);
    expect(await cacheUsage(quota)).toMatchObject({ bytes: 2000, files: 2 });
  });

  it("never evicts the files a source is reading: one that does not fit is read by ranges, uncached; so is one over the quota", async () => {
    await clearCachedModels();
    const src = await cachedUrlSource(base, { quota });
    taken();
    for (const n of ['x', 'y']) await src.open(n).read(0, 4);
    expect((await src.open('z').read(10, 2))[1]).toBe(1);
    expect(cachedNames()).toEqual(['x', 'y']);
    expect((await src.open('big').read(4990, 4)).length).toBe(4);
    expect(cachedNames()).toEqual(['x', 'y']);
    expect(taken()).toEqual(['GET x', 'GET y', 'GET z', 'GET z bytes=10-11', 'GET big', 'GET big bytes=4990-4993']);
  });

  it('a cached file gone from the server is dropped with an error naming it', async () => {
    delete versions.x;
    await expect(read('x')).rejects.toThrow(/\/m\/x: HTTP 404 \(its cached copy was dropped\)/);
    expect(cachedNames()).toEqual(['y']);
  });

  it('clearCachedModels empties the cache', async () => {
    await clearCachedModels();
    expect(await cacheUsage(quota)).toEqual({ bytes: 0, files: 0, quota });
  });
});
