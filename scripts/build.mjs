// Bundles with esbuild: the library an app installs (dist/index.js + dist/index.d.ts), the CLI (Node
// and Deno run the same file), and the Deno and browser conformance drivers. WGSL files are imported as text.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { rollup } from 'rollup';
import { dts } from 'rollup-plugin-dts';

// `--device DIR`: the bundles the accelerator machine runs, without source maps (its carry is 64 MiB).
const deviceDir = process.argv.indexOf('--device') > 0 ? process.argv[process.argv.indexOf('--device') + 1] : undefined;
const outDir = deviceDir ?? 'dist';

const common = { bundle: true, format: 'esm', target: 'es2022', loader: { '.wgsl': 'text' }, sourcemap: deviceDir ? false : 'linked', logLevel: 'warning' };
// `webgpu` (Dawn's native addon) is loaded only in Node, at run time.
const server = { ...common, platform: 'node', external: ['webgpu'] };
// What the library leaves to the app's resolver (package.json dependencies).
const LIBRARY_DEPENDENCIES = ['typegpu', 'typegpu/*', '@huggingface/tokenizers'];
// `typeof import('node:fs')` is a type and stays.
const HOST_IMPORT = /(?<!typeof\s*)\bimport\((['"])(node:[\w/]+|webgpu)\1\)/g;

/**
 * The library's dynamic imports of Node/Deno-only modules (node:*, webgpu) get a specifier that
 * bundlers cannot follow, so an app's Vite/webpack/esbuild build never resolves or shims them.
 */
const hostImports = {
  name: 'host-imports',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, async (args) => ({
      contents: (await readFile(args.path, 'utf8')).replace(HOST_IMPORT, 'import(/* @vite-ignore */ /* webpackIgnore: true */ String($1$2$1))'),
      loader: 'ts',
    }));
  },
};

/** tsc writes a declaration per module; rollup-plugin-dts joins them into one file, which Deno and JSR resolve too. */
async function buildTypes(outfile) {
  const tmp = await mkdtemp(join(tmpdir(), 'deepwgsl-types-'));
  try {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.types.json', '--outDir', tmp], { stdio: 'inherit' });
    const bundle = await rollup({ input: join(tmp, 'index.d.ts'), plugins: [dts()], external: [/^typegpu/, '@huggingface/tokenizers', '@webgpu/types'] });
    await bundle.write({ file: outfile, format: 'es' });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function buildLibrary() {
  await build({
    ...common,
    platform: 'neutral',
    entryPoints: ['src/index.ts'],
    outfile: `${outDir}/index.js`,
    external: LIBRARY_DEPENDENCIES,
    plugins: [hostImports],
    // Deno (and JSR) take the types from this comment; bundlers and Node from package.json.
    banner: { js: '// @ts-self-types="./index.d.ts"' },
  });
  const left = (await readFile(`${outDir}/index.js`, 'utf8')).match(/\bimport\("(node:[^"]*|webgpu)"\)/);
  if (left) throw new Error(`build: dist/index.js still imports ${left[1]} by a literal specifier (write it as import('${left[1]}') so the host-imports plugin rewrites it)`);
}

await Promise.all([
  build({ ...server, entryPoints: ['src/cli/main.ts'], outfile: `${outDir}/cli.js`, banner: { js: '#!/usr/bin/env node' } }),
  build({ ...server, entryPoints: ['tests/drivers/standalone.ts'], outfile: `${outDir}/tests/standalone.js` }),
  build({ ...common, platform: 'browser', entryPoints: ['tests/drivers/browser.ts'], outfile: `${outDir}/tests/browser.js`, external: ['webgpu', 'node:*'] }),
  ...(deviceDir ? [] : [buildLibrary(), buildTypes(`${outDir}/index.d.ts`)]),
]);
