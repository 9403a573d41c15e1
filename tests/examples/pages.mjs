// The browser pages in real Chromium (SwiftShader): each page does its job, and leaves a screenshot in
// dist/screenshots/ to look at. Needs `npm run build:examples` first.
import fs from 'node:fs';
import { launchChromium, serve } from '../drivers/chromium-lib.mjs';

const shots = 'dist/screenshots';
fs.mkdirSync(shots, { recursive: true });
const server = await serve('dist/examples');
const browser = await launchChromium();
const results = [];

async function pageTest(name, path, body) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Probing for optional files (a shard index, a tokenizer) answers 404, which Chromium logs as an error.
  page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && errors.push(m.text()));
  try {
    await page.goto(`${server.url}${path}`);
    const detail = await body(page);
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    results.push({ name, ok: true, detail });
  } catch (e) {
    results.push({ name, ok: false, detail: e.message });
  } finally {
    await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
    await page.close();
  }
}

await pageTest('bench', '/bench/?autorun', async (page) => {
  await page.waitForFunction('window.__bench?.done', { timeout: 10 * 60 * 1000, polling: 500 });
  const r = await page.evaluate('window.__bench');
  if (r.error) throw new Error(r.error);
  const plotted = await page.$$eval('#plot svg polyline', (l) => l.length);
  const ceilings = await page.$$eval('#ceilings tr', (l) => l.length - 1);
  if (ceilings < 2 || plotted < 1) throw new Error(`expected ceilings and roofline lines, got ${ceilings} ceilings, ${plotted} lines`);
  if (!(r.traceEvents > 0)) throw new Error('the trace recorded no events');
  return `${ceilings} ceilings, ${r.rows} kernel rows, ${plotted} roofline lines, ${r.traceEvents} trace events`;
});

await pageTest('playground', '/playground/', async (page) => {
  await page.waitForFunction('window.__playground?.ready', { timeout: 60_000 });
  const runAndWait = async (n) => {
    await page.click('#run');
    await page.waitForFunction(`window.__playground.runs >= ${n}`, { timeout: 5 * 60 * 1000, polling: 250 });
    return page.evaluate('window.__playground.results');
  };
  const first = await runAndWait(1);
  if (!first.A?.ok || !first.B?.ok) throw new Error(`configs A and B should match the CPU: ${JSON.stringify(first)}`);
  const wgsl = await page.$eval('#wgsl', (t) => t.value);
  if (!wgsl.includes('fn main')) throw new Error('the generated WGSL is not shown');
  await page.screenshot({ path: `${shots}/playground-ok.png`, fullPage: true });
  // A broken edit: the compile error must be listed on the line that was broken.
  await page.$eval('#wgsl', (t) => (t.value = t.value.replace(/fn main\(/, 'fn main(oops ')));
  await page.click('#useEdited');
  const second = await runAndWait(2);
  const marked = await page.$$eval('#diagnostics .err', (l) => l.map((e) => e.textContent));
  if (!second.A?.error || !marked.some((t) => t.includes('oops'))) throw new Error(`expected a compile error marked on the edited line, got ${JSON.stringify({ second, marked })}`);
  // The FP8 GEMM entry: its own fields and configs, both configs within tolerance.
  await page.select('#kernel', '1');
  await page.waitForFunction(() => document.querySelector('#field-n') && document.querySelector('#configA').value.includes('splits'), { timeout: 60_000 });
  const third = await runAndWait(3);
  if (!third.A?.ok || !third.B?.ok) throw new Error(`FP8 GEMM configs should match the CPU: ${JSON.stringify(third)}`);
  await page.select('#kernel', '2');
  await page.waitForFunction(() => document.querySelector('#field-groups') && document.querySelector('#configA').value.includes('splits'), { timeout: 60_000 });
  const fourth = await runAndWait(4);
  if (!fourth.A?.ok || !fourth.B?.ok) throw new Error(`masked grouped GEMM configs should match the CPU: ${JSON.stringify(fourth)}`);
  return `masked GEMM A err ${fourth.A.err.toExponential(2)}; MLA A err ${first.A.err.toExponential(2)} in ${first.A.ms.toFixed(2)} ms, B err ${first.B.err.toExponential(2)}; broken edit shows ${marked.length} marked line(s); GEMM A err ${third.A.err.toExponential(2)}, B err ${third.B.err.toExponential(2)}`;
});

await pageTest('decode', '/decode/?autorun', async (page) => {
  await page.waitForFunction('window.__decode?.done || window.__decode?.error', { timeout: 10 * 60 * 1000, polling: 500 });
  const r = await page.evaluate('window.__decode');
  if (r.error) throw new Error(r.error);
  const same = r.ids.length === r.reference.length && r.ids.every((t, i) => t === r.reference[i]);
  if (!same) throw new Error(`greedy tokens ${r.ids} differ from the fixture's ${r.reference}`);
  const stats = await page.$eval('#stats', (e) => e.textContent);
  // The downloads are cached within a quota the page shows, and the control clears them.
  const text = () => page.$eval('#cacheInfo', (e) => e.textContent);
  await page.waitForFunction(() => /cached models: [1-9]\d* file/.test(document.querySelector('#cacheInfo').textContent), { timeout: 60_000 });
  const cached = await text();
  if (!/of a [\d.]+ [KMG]iB quota/.test(cached)) throw new Error(`expected the cache's quota shown, got '${cached}'`);
  await page.click('#clearCache');
  await page.waitForFunction(() => document.querySelector('#cacheInfo').textContent.startsWith('cached models: 0 file(s)'), { timeout: 60_000 });
  const left = await page.evaluate(async () => (await (await caches.open('deepwgsl-weights-v1')).keys()).length);
  if (left !== 0) throw new Error(`clear cached models left ${left} entries`);
  // A budget below the model's weights is refused before anything is uploaded.
  await page.$eval('#budget', (e) => (e.value = '0.001'));
  await page.evaluate(() => (window.__decode = {}));
  await page.click('#tiny');
  await page.waitForFunction('window.__decode?.error', { timeout: 5 * 60 * 1000, polling: 500 });
  const refused = await page.evaluate('window.__decode.error');
  if (!/over the budget of [\d.]+ MiB; nothing was uploaded/.test(refused)) throw new Error(`expected the memory budget to refuse the model, got '${refused}'`);
  return `tiny-v3-a greedy ${r.ids.join(',')} = transformers'; ${stats}; ${cached}, cleared; budget refusal shown`;
});

await browser.close();
server.close();
for (const r of results) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} page ${r.name}: ${r.detail}`);
const failed = results.filter((r) => !r.ok).length;
console.log(`pages: ${results.length - failed} passed, ${failed} failed (screenshots in ${shots}/)`);
process.exit(failed ? 1 : 0);
