// A log-log roofline as SVG: attained TFLOP/s against arithmetic intensity, under the measured ceilings.
import type { BenchRow, Ceiling } from '../../src/index.ts';

const W = 760;
const H = 380;
const PAD = { l: 64, r: 120, t: 16, b: 44 };
const NS = 'http://www.w3.org/2000/svg';

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function roofline(ceilings: Ceiling[], rows: BenchRow[]): SVGSVGElement {
  const bw = ceilings.find((c) => c.name === 'stream-read')?.value ?? 1; // GB/s
  const fmas = ceilings.filter((c) => c.unit === 'TFLOP/s');
  const points = rows.filter((r) => r.gbs && r.tflops).map((r) => ({ r, ai: (r.tflops! * 1e3) / r.gbs!, y: r.tflops! }));
  const top = Math.max(...fmas.map((c) => c.value), ...points.map((p) => p.y), 1e-3) * 2;
  const [x0, x1] = [Math.log10(0.05), Math.log10(2000)];
  const [y0, y1] = [Math.log10(top / 1e5), Math.log10(top)];
  const sx = (ai: number) => PAD.l + ((Math.log10(ai) - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const sy = (t: number) => PAD.t + (1 - (Math.log10(Math.max(t, 10 ** y0)) - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-label': 'roofline plot' }) as SVGSVGElement;
  for (let e = Math.ceil(x0); e <= x1; e++) {
    root.append(svg('line', { x1: sx(10 ** e), x2: sx(10 ** e), y1: PAD.t, y2: H - PAD.b, stroke: '#eceff4' }));
    root.append(svg('text', { x: sx(10 ** e), y: H - PAD.b + 16, 'text-anchor': 'middle', 'font-size': 11, fill: '#5b6473' }, `${10 ** e}`));
  }
  for (let e = Math.ceil(y0); e <= y1; e++) {
    root.append(svg('line', { x1: PAD.l, x2: W - PAD.r, y1: sy(10 ** e), y2: sy(10 ** e), stroke: '#eceff4' }));
    root.append(svg('text', { x: PAD.l - 6, y: sy(10 ** e) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#5b6473' }, `${10 ** e}`));
  }
  root.append(svg('text', { x: (PAD.l + W - PAD.r) / 2, y: H - 6, 'text-anchor': 'middle', 'font-size': 12 }, 'arithmetic intensity (FLOP / byte)'));
  root.append(svg('text', { x: 14, y: (PAD.t + H - PAD.b) / 2, 'text-anchor': 'middle', 'font-size': 12, transform: `rotate(-90 14 ${(PAD.t + H - PAD.b) / 2})` }, 'TFLOP/s'));
  const colors = ['#2c6bed', '#8a3ffc'];
  fmas.forEach((c, i) => {
    const knee = (c.value * 1e3) / bw; // FLOP/byte where bandwidth meets this rate
    const xs = [10 ** x0, knee, 10 ** x1];
    const pts = xs.map((ai) => `${sx(ai)},${sy(Math.min(c.value, (ai * bw) / 1e3))}`).join(' ');
    root.append(svg('polyline', { points: pts, fill: 'none', stroke: colors[i % 2], 'stroke-width': 2 }));
    root.append(svg('text', { x: W - PAD.r + 6, y: sy(c.value) + 4, 'font-size': 11, fill: colors[i % 2] }, `${c.name} ${c.value.toPrecision(3)}`));
  });
  const at = 10 ** (x0 + 0.35);
  root.append(svg('text', { x: sx(at), y: sy((at * bw) / 1e3) - 14, 'font-size': 11, fill: '#5b6473' }, `${bw.toPrecision(4)} GB/s`));
  for (const p of points) {
    const dot = svg('circle', { cx: sx(p.ai), cy: sy(p.y), r: 4, fill: '#e8710a', 'fill-opacity': 0.8 });
    dot.append(svg('title', {}, `${p.r.suite}: ${p.r.name}\n${p.y.toPrecision(3)} TFLOP/s at ${p.ai.toPrecision(3)} FLOP/B`));
    root.append(dot);
  }
  return root;
}
