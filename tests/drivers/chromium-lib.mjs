// Shared by the Chromium drivers: a static server on localhost and Debian's Chromium with SwiftShader WebGPU.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const TYPES = { '.js': 'text/javascript', '.html': 'text/html', '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml' };

/** Serves `root` on 127.0.0.1 (a random port); `pages` maps paths to inline HTML. Directory paths serve index.html. */
export async function serve(root, pages = {}) {
  root = path.resolve(root);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (pages[url.pathname]) {
      res.setHeader('content-type', 'text/html');
      return res.end(pages[url.pathname]);
    }
    let file = path.join(root, path.normalize(decodeURIComponent(url.pathname)));
    if (file.startsWith(root) && fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!file.startsWith(root) || !fs.existsSync(file)) {
      res.statusCode = url.pathname === '/favicon.ico' ? 204 : 404;
      return res.end();
    }
    res.setHeader('content-type', TYPES[path.extname(file)] ?? 'application/octet-stream');
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

export function launchChromium() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    // waitForFunction is one protocol call lasting the whole wait: puppeteer's default 180 s protocol
    // timeout would cut the drivers' own (longer) waits short on a loaded machine.
    protocolTimeout: 20 * 60 * 1000,
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
}
