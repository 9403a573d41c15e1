// Chromium driver: serves the bundled conformance page on localhost and drives Debian's Chromium
// (SwiftShader WebGPU) with puppeteer-core. Prints the page's lines and its closing summary.
import { launchChromium, serve } from './chromium-lib.mjs';

// The repository root is served: the page's bundle from dist/tests, the model checks' fixtures from tests/fixtures and models/.
const html = '<!doctype html><meta charset="utf-8"><title>deepwgsl conformance</title><script type="module" src="/dist/tests/browser.js"></script>';
const server = await serve('.', { '/': html });
const browser = await launchChromium();
let code = 1;
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(m.text()));
  // DEEPWGSL_CHECKS and DEEPWGSL_SEED reach the page as globals (envVar reads them there).
  for (const name of ['DEEPWGSL_CHECKS', 'DEEPWGSL_SEED']) {
    if (process.env[name] !== undefined) await page.evaluateOnNewDocument((n, v) => { globalThis[n] = v; }, name, process.env[name]);
  }
  page.on('pageerror', (e) => console.log(`chromium: page error: ${e.message}`));
  await page.goto(`${server.url}/`);
  await page.waitForFunction('window.__done !== undefined', { timeout: 15 * 60 * 1000, polling: 500 });
  const done = await page.evaluate('window.__done');
  code = done.failed === 0 && done.passed > 0 ? 0 : 1;
} catch (e) {
  console.log(`chromium: 0 passed, 1 failed (${e.message})`);
} finally {
  await browser.close();
  server.close();
}
process.exit(code);
