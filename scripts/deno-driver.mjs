// Runs the Deno conformance driver with the `deno` npm package's binary; without a GPU, Mesa's
// lavapipe is the adapter (wgpu finds it through the Vulkan loader).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const deno = path.join(path.dirname(require.resolve('deno/package.json')), '..', '.bin', 'deno');
const r = spawnSync(deno, ['run', '-A', 'dist/tests/standalone.js'], { stdio: 'inherit', env: { ...process.env, DENO_NO_UPDATE_CHECK: '1' } });
process.exit(r.status ?? 1);
