// Bundles with esbuild: the CLI (Node and Deno run the same file), and the Deno and browser
// conformance drivers. WGSL files are imported as text.
import { build } from 'esbuild';

// `--device DIR`: the bundles the accelerator machine runs, without source maps (its carry is 64 MiB).
const deviceDir = process.argv.indexOf('--device') > 0 ? process.argv[process.argv.indexOf('--device') + 1] : undefined;
const outDir = deviceDir ?? 'dist';

const common = { bundle: true, format: 'esm', target: 'es2022', loader: { '.wgsl': 'text' }, sourcemap: deviceDir ? false : 'linked', logLevel: 'warning' };
// `webgpu` (Dawn's native addon) is loaded only in Node, at run time.
const server = { ...common, platform: 'node', external: ['webgpu'] };

await Promise.all([
  build({ ...server, entryPoints: ['src/cli/main.ts'], outfile: `${outDir}/cli.js`, banner: { js: '#!/usr/bin/env node' } }),
  build({ ...server, entryPoints: ['tests/drivers/standalone.ts'], outfile: `${outDir}/tests/standalone.js` }),
  build({ ...common, platform: 'browser', entryPoints: ['tests/drivers/browser.ts'], outfile: `${outDir}/tests/browser.js`, external: ['webgpu', 'node:*'] }),
]);
