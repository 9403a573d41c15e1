// The bench page: the CLI's `deepwgsl bench`, in a tab, with a roofline and downloads.
import { BENCH_COLUMNS, CEILING_COLUMNS, Profiler, SUITES, runBench, type BenchReport, type BenchRow, type BenchSuite, type Ceiling, type TableColumn } from '../../src/index.ts';
import { adapterPanel, download, el, openGpu } from '../common/ui.ts';
import { roofline } from './roofline.ts';

const $ = (id: string) => document.getElementById(id)!;
const headRow = <T>(cols: TableColumn<T>[]) => el('tr', {}, ...cols.map((c) => el('th', {}, c.title)));
const bodyRow = <T>(cols: TableColumn<T>[], r: T) => el('tr', {}, ...cols.map((c) => el('td', c.numeric ? { className: 'num' } : {}, c.cell(r))));

const ctx = await openGpu();
$('device').replaceChildren(el('h2', {}, 'Your GPU'), ctx ? adapterPanel(ctx) : el('p', { className: 'muted' }, 'No WebGPU: see above.'));
const w = window as unknown as { __bench?: { done: boolean; rows: number; traceEvents?: number; error?: string } };

if (ctx) {
  const picks = new Map<BenchSuite, HTMLInputElement>(SUITES.map((s) => [s, el('input', { type: 'checkbox', checked: true })]));
  let last: BenchReport | undefined;
  let trace: Profiler | undefined;
  const save = el('button', { className: 'secondary', disabled: true, onclick: () => download('deepwgsl-bench.json', last) }, 'Download JSON');
  const saveTrace = el('button', { className: 'secondary', disabled: true, title: 'Chrome trace JSON: open in ui.perfetto.dev', onclick: () => download('deepwgsl-trace.json', trace!.toChromeTrace()) }, 'Download trace');
  const run = async (quick: boolean) => {
    for (const b of document.querySelectorAll('button')) b.disabled = true;
    const suites = SUITES.filter((s) => picks.get(s)!.checked);
    const steps = 1 + suites.length;
    let done = 0;
    const step = (label: string) => {
      $('progress').style.width = `${(100 * done++) / steps}%`;
      $('status').textContent = label;
    };
    let tbody: HTMLTableElement | undefined;
    const rows: BenchRow[] = [];
    let ceilings: Ceiling[] = [];
    $('suites').replaceChildren();
    step('measuring ceilings…');
    try {
      const report: BenchReport = await runBench(ctx, {
        quick,
        iters: ctx.isSoftware ? 3 : 20,
        suites,
        profiler: (trace = new Profiler(ctx)),
        onCeilings: (c) => {
          ceilings = c;
          $('ceilings').replaceChildren(el('h2', {}, 'Ceilings'), el('table', {}, headRow(CEILING_COLUMNS), ...c.map((x) => bodyRow(CEILING_COLUMNS, x))));
          $('plot').replaceChildren(roofline(c, rows));
        },
        onSuite: (s) => {
          step(`running ${s.describe}…`);
          tbody = el('table', {}, headRow(BENCH_COLUMNS));
          $('suites').append(el('section', {}, el('h2', {}, s.describe), tbody));
        },
        onRow: (r) => {
          rows.push(r);
          tbody!.append(bodyRow(BENCH_COLUMNS, r));
          $('plot').replaceChildren(roofline(ceilings, rows));
        },
      });
      done = steps;
      step(`done: ${report.rows.length} kernel cases on ${report.device}`);
      last = report;
      w.__bench = { done: true, rows: report.rows.length, traceEvents: trace.events.length };
    } catch (e) {
      $('status').textContent = `failed: ${(e as Error).message}`;
      w.__bench = { done: true, rows: rows.length, error: (e as Error).message };
    }
    for (const b of document.querySelectorAll('button')) b.disabled = (b === save || b === saveTrace) && !last;
  };
  $('controls').append(
    el('button', { id: 'quick', onclick: () => run(true) }, 'Run quick suite'),
    el('button', { className: 'secondary', onclick: () => run(false) }, 'Run full suite'),
    save,
    saveTrace,
    ...[...picks].map(([s, box]) => el('label', {}, box, ` ${s.flag}`)),
  );
  $('plot').replaceChildren(roofline([], []));
  if (new URLSearchParams(location.search).has('autorun')) void run(true);
}
