// The kernel playground: pick a kernel and shapes, edit two JIT configs or the generated WGSL, run both
// against the CPU reference, and see compile errors on the lines they point at.
import { timeLaunch, WgslCompileError, type GpuContext } from '../../src/index.ts';
import { adapterPanel, el, openGpu } from '../common/ui.ts';
import { KERNELS, type Fields, type PlaygroundKernel } from './kernels.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const w = window as unknown as { __playground?: { ready?: boolean; runs: number; results: Record<string, unknown>; compileErrors: number; error?: string } };
w.__playground = { runs: 0, results: {}, compileErrors: 0 };

const ctx = await openGpu();
$('device').replaceChildren(el('h2', {}, 'Your GPU'), ctx ? adapterPanel(ctx) : el('p', { className: 'muted' }, 'No WebGPU: see above.'));

let kernel: PlaygroundKernel = KERNELS[0];
const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();

function fields(): Fields {
  return Object.fromEntries([...inputs].map(([k, e]) => [k, e.value]));
}

function buildForm(c: GpuContext): void {
  const pick = el('select', { id: 'kernel', onchange: () => ((kernel = KERNELS[Number(pick.value)]), buildForm(c)) }, ...KERNELS.map((k, i) => el('option', { value: String(i), selected: k === kernel }, k.name)));
  inputs.clear();
  const rows = Object.entries(kernel.fields).map(([name, v]) => {
    const input = Array.isArray(v) ? el('select', {}, ...v.map((o) => el('option', { value: o }, o))) : el('input', { type: 'number', value: String(v), min: '1' });
    input.id = `field-${name}`;
    input.onchange = () => void resetConfigs();
    inputs.set(name, input);
    return el('label', { className: 'field' }, name, input);
  });
  $('form').replaceChildren(el('label', { className: 'field' }, 'kernel', pick), ...rows);
  void resetConfigs();
}

async function resetConfigs(): Promise<void> {
  const f = fields();
  const [def, ...rest] = await kernel.configs(ctx!, f);
  const other = rest.find((c) => JSON.stringify(c) !== JSON.stringify(def)) ?? def;
  $<HTMLTextAreaElement>('configA').value = JSON.stringify(def);
  $<HTMLTextAreaElement>('configB').value = JSON.stringify(other);
  $<HTMLInputElement>('useEdited').checked = false;
  $('wgsl').dataset.kernel = '';
}

/** The module as a numbered listing, failing lines marked and their messages under them. */
function listing(e: WgslCompileError): HTMLElement {
  const byLine = new Map<number, string[]>();
  for (const m of e.messages) byLine.set(m.line, [...(byLine.get(m.line) ?? []), `^ ${m.where}: ${m.message}`]);
  const pre = el('pre', { className: 'listing' });
  e.code.split('\n').forEach((text, i) => {
    const msgs = byLine.get(i + 1);
    pre.append(el('span', { className: msgs ? 'err' : '' }, `${String(i + 1).padStart(4)}  ${text}\n`));
    for (const m of msgs ?? []) pre.append(el('span', { className: 'msg' }, m));
  });
  return pre;
}

async function runOne(c: GpuContext, label: 'A' | 'B', edited: string | undefined): Promise<void> {
  const box = $(`result${label}`);
  let jit = '';
  try {
    const config = JSON.parse($<HTMLTextAreaElement>(`config${label}`).value);
    jit = kernel.jitKernel(fields(), config);
    c.pipelines.override(jit, edited);
    const r = await kernel.run(c, fields(), config);
    const t = await timeLaunch(c, r.launch, { iters: c.isSoftware ? 3 : 20 });
    const gbs = r.launch.info.bytes / (t.medianMs / 1e3) / 1e9;
    const tflops = r.launch.info.flops / (t.medianMs / 1e3) / 1e12;
    const ok = r.err <= r.tol;
    box.replaceChildren(
      el('div', { className: 'result' }, el('b', { className: ok ? 'ok' : 'bad' }, ok ? 'matches the CPU reference' : 'DIFFERS from the CPU reference')),
      el('div', { className: 'result' }, `error ${r.err.toPrecision(3)} (tolerance ${r.tol}) — ${r.errUnit}`),
      el('div', { className: 'result' }, `time ${t.medianMs.toFixed(4)} ms (${t.method}), ${gbs.toPrecision(3)} GB/s${r.launch.info.flops ? `, ${tflops.toPrecision(3)} TFLOP/s` : ''}`),
    );
    w.__playground!.results[label] = { err: r.err, tol: r.tol, ms: t.medianMs, ok };
    if (label === 'A' && !edited) {
      $<HTMLTextAreaElement>('wgsl').value = c.pipelines.sourceOf(jit) ?? '';
      $('diagnostics').replaceChildren();
    }
  } catch (e) {
    const compile = e instanceof WgslCompileError;
    const summary = compile ? `${e.messages.length} compile error(s), first at line ${e.messages[0].line}: ${e.messages[0].message} (listing on the right)` : (e as Error).message;
    box.replaceChildren(el('div', { className: 'result' }, el('b', { className: 'bad' }, 'failed: '), summary));
    if (compile) {
      w.__playground!.compileErrors++;
      const pre = listing(e);
      $('diagnostics').replaceChildren(el('p', { className: 'result' }, el('b', { className: 'bad' }, `${e.messages.length} compile error(s)`)), pre);
      const first = pre.querySelector<HTMLElement>('.err');
      if (first) pre.scrollTop = first.offsetTop - pre.offsetTop - 60;
    }
    w.__playground!.results[label] = { error: (e as Error).message };
  } finally {
    if (jit) c.pipelines.override(jit, undefined);
  }
}

if (ctx) {
  buildForm(ctx);
  $('run').onclick = async () => {
    $<HTMLButtonElement>('run').disabled = true;
    $('status').textContent = 'running…';
    const edited = $<HTMLInputElement>('useEdited').checked ? $<HTMLTextAreaElement>('wgsl').value : undefined;
    await runOne(ctx, 'A', edited);
    await runOne(ctx, 'B', undefined);
    w.__playground!.runs++;
    $('status').textContent = '';
    $<HTMLButtonElement>('run').disabled = false;
  };
  w.__playground.ready = true;
}
