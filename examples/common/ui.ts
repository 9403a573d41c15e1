// What every page shares: the header, a GPU context with errors a person can act on, small DOM helpers.
import { createContext, type GpuContext } from '../../src/index.ts';
import './style.css';

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...kids: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
}

export function banner(kind: 'error' | 'info', ...content: (Node | string)[]): HTMLElement {
  const b = el('div', { className: `banner ${kind}` }, ...content);
  document.querySelector('main')!.prepend(b);
  return b;
}

/** Opens the GPU, or explains why not; a lost device offers a reload. */
export async function openGpu(): Promise<GpuContext | undefined> {
  try {
    const ctx = await createContext({ log: (l) => console.log(l) });
    void ctx.device.lost.then((info) => {
      if (info.reason === 'destroyed') return;
      banner('error', `The GPU device was lost (${info.message || info.reason}). `, el('button', { onclick: () => location.reload() }, 'Reload the page'));
    });
    return ctx;
  } catch (e) {
    banner('error', (e as Error).message.replace(/^createContext: /, ''));
    return undefined;
  }
}

export function adapterPanel(ctx: GpuContext): HTMLElement {
  const a = ctx.adapterInfo;
  const rows: [string, string][] = [
    ['adapter', a.description || a.device || '(not reported)'],
    ['vendor / architecture', [a.vendor, a.architecture].filter(Boolean).join(' / ') || '(not reported)'],
    ['features used', ['shader-f16', 'subgroups', 'timestamp-query'].map((f) => `${f} ${ctx.has(f) ? 'yes' : 'no'}`).join(', ')],
    ['subgroup size', a.subgroupMinSize ? `${a.subgroupMinSize}..${a.subgroupMaxSize}` : '(not reported)'],
    ['max storage binding', `${(ctx.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB`],
    ['software adapter', ctx.isSoftware ? 'yes (expect ~1000x slower than a GPU)' : 'no'],
  ];
  return el('dl', { className: 'kv' }, ...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

export function download(name: string, data: unknown): void {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 1)], { type: 'application/json' }));
  el('a', { href: url, download: name }).click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
