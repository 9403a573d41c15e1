// Chromium driver: serves the bundled conformance page on localhost and drives Debian's Chromium
// (SwiftShader WebGPU) with puppeteer-core. Prints the page's lines and its closing summary.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const root = path.resolve('dist/tests');
const html = '<!doctype html><meta charset="utf-8"><title>deepwgsl conformance</title><script type="module" src="browser.js"></script>';
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/favicon.ico') {
    res.statusCode = 204;
    return res.end();
  }
  if (url.pathname === '/') {
    res.setHeader('content-type', 'text/html');
    return res.end(html);
  }
  const file = path.join(root, path.normalize(url.pathname));
  if (!file.startsWith(root) || !fs.existsSync(file)) {
    res.statusCode = 404;
    return res.end();
  }
  res.setHeader('content-type', file.endsWith('.js') ? 'text/javascript' : 'application/octet-stream');
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--enable-unsafe-webgpu',
    '--enable-features=Vulkan',
    '--use-vulkan=swiftshader',
    '--use-webgpu-adapter=swiftshader',
    '--disable-vulkan-surface',
    '--disable-dawn-features=timestamp_quantization',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});
let code = 1;
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(m.text()));
  page.on('pageerror', (e) => console.log(`chromium: page error: ${e.message}`));
  await page.goto(`http://127.0.0.1:${port}/`);
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
