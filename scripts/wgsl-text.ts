// Vite/vitest plugin: `import code from './x.wgsl'` gives the file's text (esbuild's text loader does the same).
import type { Plugin } from 'vite';

export const wgslText: Plugin = {
  name: 'wgsl-as-text',
  transform(code, id) {
    if (id.endsWith('.wgsl')) return { code: `export default ${JSON.stringify(code)};`, map: null };
  },
};
