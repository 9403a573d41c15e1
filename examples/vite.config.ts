// The browser pages: `npm run dev` serves them, `npm run build:examples` writes dist/examples/ for any static host.
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import { wgslText } from '../scripts/wgsl-text.ts';

const root = resolve(import.meta.dirname);
const pages = ['index', 'bench/index', 'playground/index', 'decode/index'];

export default defineConfig({
  root,
  base: './',
  plugins: [wgslText, tinyCheckpoint()],
  server: { host: '127.0.0.1' },
  build: {
    outDir: resolve(root, '../dist/examples'),
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: {
      input: Object.fromEntries(pages.map((p) => [p, resolve(root, `${p}.html`)])),
      // The library's Node/Deno-only paths (Dawn's addon, the tuning file) are dynamic imports a page never runs.
      external: ['webgpu', /^node:/],
    },
  },
});

/** The bundled tiny checkpoint at models/tiny-v3-a/: served by `npm run dev`, copied by the build. */
function tinyCheckpoint(): Plugin {
  const dir = resolve(root, '../tests/fixtures/tiny-v3-a');
  const prefix = '/models/tiny-v3-a/';
  return {
    name: 'tiny-checkpoint',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const name = req.url?.startsWith(prefix) ? req.url.slice(prefix.length).split('?')[0] : '';
        if (!readdirSync(dir).includes(name)) return next();
        res.end(readFileSync(resolve(dir, name)));
      });
    },
    generateBundle() {
      for (const name of readdirSync(dir)) this.emitFile({ type: 'asset', fileName: `models/tiny-v3-a/${name}`, source: readFileSync(resolve(dir, name)) });
    },
  };
}
