// Consumer tests: the packed tarball installed into a fresh project, used as an app would use it.
// The README's "Use it in your app" programs (examples/app-*) are copied in and run from there:
// Node, the same script under Deno, a Vite app in headless Chromium, strict tsc (bundler and nodenext)
// and deno check against the installed types, the CLI, the write-your-own-kernel example, and JSR's
// publish dry run. Needs `npm run build` first (npm test builds before it).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, serve } from '../drivers/chromium-lib.mjs';

const repo = path.resolve(fileURLToPath(import.meta.url), '../../..');
const bin = (name) => path.join(repo, 'node_modules/.bin', name);
const app = fs.mkdtempSync(path.join(os.tmpdir(), 'deepwgsl-app-'));
const env = { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1', npm_config_update_notifier: 'false' };
const NPM_OFFLINE = ['--prefer-offline', '--no-audit', '--no-fund'];

/** Runs a command to its end; rejects with its output when it exits non-zero (or runs past `timeoutS`). */
function run(cmd, args, { cwd = app, timeoutS = 240 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${code ?? signal}\n${tail(stdout + stderr)}`));
    });
  });
}

const tail = (s, lines = 15) => s.trimEnd().split('\n').slice(-lines).map((l) => `      | ${l}`).join('\n');

const results = [];
async function test(name, body) {
  const t0 = performance.now();
  let line;
  try {
    line = `  ok   ${name}: ${await body()}`;
    results.push(true);
  } catch (e) {
    line = `  FAIL ${name}: ${e.message}`;
    results.push(false);
  }
  console.log(`${line} (${((performance.now() - t0) / 1e3).toFixed(1)} s)`);
}

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

function copyExample(name, to) {
  fs.cpSync(path.join(repo, 'examples', name), path.join(app, to), { recursive: true });
}

const lastLine = (s) => s.trimEnd().split('\n').pop();

function finish() {
  const failed = results.filter((ok) => !ok).length;
  if (failed) console.log(`  (the consumer project is kept in ${app})`);
  else fs.rmSync(app, { recursive: true, force: true });
  console.log(`package: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'deepwgsl-consumer', private: true, type: 'module' }, null, 2));
copyExample('app-node', 'node');
copyExample('app-vite', 'vite');
copyExample('app-kernel', 'kernel');
fs.copyFileSync(path.join(repo, 'tests/package/consumer.ts'), path.join(app, 'consumer.ts'));

// The tarball, then the install without webgpu first: the browser build and the types must not need it.
let packed;
await test('npm pack: what a consumer runs, no install scripts', async () => {
  expect(fs.existsSync(path.join(repo, 'dist/index.d.ts')), 'dist/index.d.ts is missing: run npm run build first');
  packed = JSON.parse((await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', app], { cwd: repo })).stdout)[0];
  const files = packed.files.map((f) => f.path);
  for (const f of ['dist/index.js', 'dist/index.js.map', 'dist/index.d.ts', 'dist/cli.js', 'tests/fixtures/tiny-v3-a/model.safetensors', 'models/tiny-kjv/model.safetensors', 'models/tiny-kjv/tokenizer.json']) expect(files.includes(f), `missing ${f}`);
  const stray = files.filter((f) => f.startsWith('src/') || f.startsWith('dist/tests/') || f.startsWith('dist/examples/'));
  expect(stray.length === 0, `ships ${stray.join(', ')}`);
  const map = JSON.parse(fs.readFileSync(path.join(repo, 'dist/index.js.map'), 'utf8'));
  expect(map.sourcesContent?.length === map.sources.length, 'dist/index.js.map lacks sourcesContent');
  const scripts = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).scripts;
  const install = ['preinstall', 'install', 'postinstall'].filter((s) => scripts[s]);
  expect(install.length === 0, `install scripts: ${install.join(', ')}`);
  const mb = (bytes) => (bytes / 1e6).toFixed(1);
  const said = fs.readFileSync(path.join(repo, 'README.md'), 'utf8').match(/([\d.]+) MB packed, ([\d.]+) MB unpacked/);
  // Within 10%: a README figure is kept true, not re-typed for every kilobyte of code.
  const near = (readme, bytes) => Math.abs(Number(readme) * 1e6 - bytes) <= 0.1 * bytes;
  expect(said && near(said[1], packed.size) && near(said[2], packed.unpackedSize), `README says ${said?.[0]}; npm pack: ${mb(packed.size)} MB packed, ${mb(packed.unpackedSize)} MB unpacked`);
  return `${files.length} files, ${mb(packed.size)} MB packed, ${mb(packed.unpackedSize)} MB unpacked (the README's within 10%)`;
});

if (!packed) finish();

await test('npm install of the tarball into a fresh project', async () => {
  await run('npm', ['install', ...NPM_OFFLINE, path.join(app, packed.filename)]);
  expect(!fs.existsSync(path.join(app, 'node_modules/webgpu')), 'webgpu was installed, though it is an optional peer');
  return `deepwgsl ${packed.version} with ${fs.readdirSync(path.join(app, 'node_modules')).length} top-level packages, no webgpu`;
});

await test('node without webgpu: createContext says how to install it', async () => {
  const r = await run('node', ['-e', "import('deepwgsl').then((m) => m.createContext()).then(() => console.log('no error'), (e) => console.log(e.message))"]);
  expect(r.stdout.includes('npm install webgpu'), `got: ${r.stdout.trim()}`);
  return r.stdout.trim();
});

await test('types: strict tsc (bundler and nodenext) against the installed package', async () => {
  for (const resolution of ['bundler', 'nodenext']) {
    const compilerOptions = {
      strict: true,
      noEmit: true,
      target: 'es2022',
      module: resolution === 'bundler' ? 'esnext' : 'nodenext',
      moduleResolution: resolution,
      lib: ['es2022', 'dom'],
      // No `types`: WebGPU's must come with deepwgsl's. skipLibCheck: typegpu's own .d.ts do not check under strict.
      types: [],
      skipLibCheck: true,
    };
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }, null, 2));
    await run(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);
  }
  return 'consumer.ts compiles under both, its @ts-expect-error lines are errors';
});

await test('types in Deno: deno check against node_modules', async () => {
  await run(bin('deno'), ['check', 'consumer.ts']);
  return 'consumer.ts type-checks, @ts-expect-error lines included';
});

await test('Vite app: vite build without webgpu, no node built-ins in the bundle', async () => {
  const r = await run(process.execPath, [path.join(repo, 'node_modules/vite/bin/vite.js'), 'build'], { cwd: path.join(app, 'vite') });
  const out = r.stdout + r.stderr;
  expect(!/externalized for browser compatibility|Rollup failed|cannot be analyzed/.test(out), `vite warned:\n${tail(out)}`);
  const js = fs.readdirSync(path.join(app, 'vite/dist/assets')).filter((f) => f.endsWith('.js'));
  const code = js.map((f) => fs.readFileSync(path.join(app, 'vite/dist/assets', f), 'utf8')).join('\n');
  expect(!/from\s*["']node:|__vite-browser-external|dawn\.node/.test(code), 'the bundle imports a node built-in or Dawn');
  return `${js.length} chunk(s), ${(code.length / 1024).toFixed(0)} KiB`;
});

await test('Vite app in headless Chromium: GPU cast checked against the CPU on the page', async () => {
  const server = await serve(path.join(app, 'vite/dist'));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/`);
    await page.waitForFunction('window.__deepwgsl !== undefined', { timeout: 180_000, polling: 250 });
    const r = await page.evaluate('window.__deepwgsl');
    const shown = await page.$eval('#out', (e) => e.textContent);
    expect(!r.error && errors.length === 0, `page: ${r.error ?? errors.join('; ')}`);
    expect(r.mismatches === 0, shown);
    return shown;
  } finally {
    await browser.close();
    server.close();
  }
});

await test('install webgpu (the optional peer) for Node', async () => {
  const version = JSON.parse(fs.readFileSync(path.join(repo, 'node_modules/webgpu/package.json'), 'utf8')).version;
  await run('npm', ['install', ...NPM_OFFLINE, `webgpu@${version}`]);
  return `webgpu ${version}`;
});

await test('Node ESM script: FP8 cast and fp8GemmNT against the CPU', async () => {
  const r = await run('node', ['node/main.mjs']);
  return r.stdout.trim().split('\n').join('; ');
});

await test('Deno, the same script: FP8 cast and fp8GemmNT against the CPU', async () => {
  const r = await run(bin('deno'), ['run', '-A', 'node/main.mjs']);
  return r.stdout.trim().split('\n').join('; ');
});

await test('Deno from a local path (the unpacked tarball, types through @ts-self-types): check and run', async () => {
  fs.mkdirSync(path.join(app, 'local'));
  await run('tar', ['xzf', packed.filename, '-C', 'local']);
  const fromPath = (file) => fs.readFileSync(path.join(app, file), 'utf8').replace("from 'deepwgsl'", "from './package/dist/index.js'");
  fs.writeFileSync(path.join(app, 'local/consumer.ts'), fromPath('consumer.ts'));
  fs.writeFileSync(path.join(app, 'local/main.mjs'), fromPath('node/main.mjs'));
  await run(bin('deno'), ['check', 'local/consumer.ts']);
  const r = await run(bin('deno'), ['run', '-A', 'local/main.mjs']);
  return r.stdout.trim().split('\n').join('; ');
});

await test('write your own kernel: compose, plan a Launch, time, autotune two configs', async () => {
  const r = await run('node', ['kernel/main.mjs']);
  expect(r.stdout.includes('const WG: u32 = 64u;') && r.stdout.includes('struct Params'), 'the composed module lacks the config constant or the struct');
  return lastLine(r.stdout);
});

await test('npx deepwgsl device: one line on stderr naming the adapter, chatter only with --verbose', async () => {
  const quiet = await run('npx', ['--no', 'deepwgsl', 'device']);
  const lines = quiet.stderr.trimEnd().split('\n');
  expect(lines.length === 1 && lines[0].startsWith('deepwgsl: '), `stderr:\n${tail(quiet.stderr)}`);
  expect(quiet.stdout.includes('limits: '), `stdout:\n${tail(quiet.stdout)}`);
  const verbose = await run('npx', ['--no', 'deepwgsl', 'device', '--verbose']);
  // Where the chatter's cause is present (no session, Mesa's device-select layer), --verbose must show it.
  const chatty = !process.env.XDG_RUNTIME_DIR && fs.existsSync('/usr/share/vulkan/implicit_layer.d/VkLayer_MESA_device_select.json');
  expect(!chatty || verbose.stderr.includes('XDG_RUNTIME_DIR'), `--verbose stderr:\n${tail(verbose.stderr)}`);
  return `${lines[0]}; --verbose: ${verbose.stderr.trimEnd().split('\n').length} stderr lines`;
});

await test('npx deepwgsl demo: the bundled checkpoint decoded, tokens identical to transformers', async () => {
  const r = await run('npx', ['--no', 'deepwgsl', 'demo']);
  expect(r.stdout.includes('(identical)'), `stdout:\n${tail(r.stdout)}`);
  return lastLine(r.stdout);
});

await test('deno run -A npm:deepwgsl device (the bin through npm:)', async () => {
  const r = await run(bin('deno'), ['run', '-A', 'npm:deepwgsl', 'device']);
  expect(r.stdout.includes('limits: '), `stdout:\n${tail(r.stdout)}`);
  return lastLine(r.stderr);
});

await test('JSR: deno publish --dry-run over dist/', async () => {
  const r = await run(bin('deno'), ['publish', '--dry-run', '--allow-dirty'], { cwd: repo });
  const out = r.stdout + r.stderr;
  expect(out.includes('Dry run complete'), tail(out));
  const files = out.split('\n').filter((l) => l.trim().startsWith('file://')).length;
  return `${files} files, ${out.split('\n').find((l) => l.startsWith('Simulating publish'))?.replace(' with files:', '')}`;
});

finish();
