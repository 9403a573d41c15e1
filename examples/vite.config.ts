// The browser pages: `npm run dev` serves them, `npm run build:examples` writes dist/examples/ for any static host.
import { resolve } from 'node:path';
import { defineConfig } from 'vite';
import { wgslText } from '../scripts/wgsl-text.ts';

const root = resolve(import.meta.dirname);
const pages = ['index', 'bench/index', 'playground/index'];

export default defineConfig({
  root,
  base: './',
  plugins: [wgslText],
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
