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
  constructor(readonly where: string) {}

  private async load(): Promise<Record<string, unknown>> {
    const fs = await import('node:fs/promises');
    try {
      return JSON.parse(await fs.readFile(this.where, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return {};
      throw new Error(`tuning cache ${this.where} is unreadable (${(e as Error).message}); delete it to start afresh`);
    }
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
