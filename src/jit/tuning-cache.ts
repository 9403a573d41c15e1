// Where autotune remembers winners: a JSON file in Node/Deno (DEEPWGSL_JIT_CACHE_DIR, default
// ~/.cache/deepwgsl), IndexedDB in a browser. Keys name the GPU, the kernel and the shape class.
import type { GpuContext } from '../gpu/context.ts';
import { envVar, runtime } from '../gpu/env.ts';

export interface TuningStore {
  readonly where: string;
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}

export function gpuKey(ctx: GpuContext): string {
  const a = ctx.adapterInfo;
  return [ctx.runtime, a.vendor, a.architecture, a.device, a.description].join('/');
}

export class MemoryTuningStore implements TuningStore {
  readonly where = 'memory';
  private readonly map = new Map<string, unknown>();
  async get(key: string): Promise<unknown> {
    return this.map.get(key);
  }
  async set(key: string, value: unknown): Promise<void> {
    this.map.set(key, value);
  }
}

export class FileTuningStore implements TuningStore {
  private warned = false;
  constructor(readonly where: string) {}

  /**
   * The stored winners. A file that is not a JSON object (garbage, `null`, a list) is ignored with
   * one warning, as if empty, and the next set() replaces it: a cache must not break every kernel.
   */
  private async load(): Promise<Record<string, unknown>> {
    const fs = await import('node:fs/promises');
    let text: string;
    try {
      text = await fs.readFile(this.where, 'utf8');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return {};
      throw new Error(`tuning cache ${this.where} is unreadable (${(e as Error).message})`);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = e as Error;
    }
    if (data !== null && typeof data === 'object' && !Array.isArray(data) && !(data instanceof Error)) return data as Record<string, unknown>;
    if (!this.warned) {
      this.warned = true;
      const what = data instanceof Error ? `not JSON: ${data.message}` : `holds ${JSON.stringify(data)?.slice(0, 40)}`;
      console.warn(`deepwgsl: tuning cache ${this.where} is not a JSON object of tuned configs (${what}); ignoring it (the next autotune rewrites it)`);
    }
    return {};
  }

  async get(key: string): Promise<unknown> {
    return (await this.load())[key];
  }

  async set(key: string, value: unknown): Promise<void> {
    const fs = await import('node:fs/promises');
    const path = await import('node:path');
    const data = await this.load();
    data[key] = value;
    await fs.mkdir(path.dirname(this.where), { recursive: true });
    const tmp = `${this.where}.${Date.now()}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(data, null, 1));
    await fs.rename(tmp, this.where);
  }
}

export class IndexedDbTuningStore implements TuningStore {
  readonly where = 'IndexedDB deepwgsl/tuning';
  private db(): Promise<IDBDatabase> {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open('deepwgsl', 1);
      req.onupgradeneeded = () => req.result.createObjectStore('tuning');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  private async tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.db();
    return new Promise((resolve, reject) => {
      const req = f(db.transaction('tuning', mode).objectStore('tuning'));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  get(key: string): Promise<unknown> {
    return this.tx('readonly', (s) => s.get(key));
  }
  async set(key: string, value: unknown): Promise<void> {
    await this.tx('readwrite', (s) => s.put(value, key));
  }
}

let defaultStore: TuningStore | undefined;

export function defaultTuningStore(): TuningStore {
  if (!defaultStore) {
    if (runtime() === 'browser') defaultStore = new IndexedDbTuningStore();
    else {
      const dir = envVar('DEEPWGSL_JIT_CACHE_DIR') ?? `${envVar('HOME') ?? '.'}/.cache/deepwgsl`;
      defaultStore = new FileTuningStore(`${dir}/tuning.json`);
    }
  }
  return defaultStore;
}
