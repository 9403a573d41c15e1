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
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
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
  return `${ceilings} ceilings, ${r.rows} kernel rows, ${plotted} roofline lines`;
});

await browser.close();
server.close();
for (const r of results) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} page ${r.name}: ${r.detail}`);
const failed = results.filter((r) => !r.ok).length;
console.log(`pages: ${results.length - failed} passed, ${failed} failed (screenshots in ${shots}/)`);
process.exit(failed ? 1 : 0);
