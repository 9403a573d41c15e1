// The command line against hostile and careless input, run as a user runs it (dist/cli.js, built by
// `npm test` before vitest): every flag parsed strictly and refused with its name before a GPU is
// opened or a file read; output complete when piped; output paths never overwritten without --force.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readInput, refuseExisting, writeOutput } from '../src/cli/command.ts';

const CLI = 'dist/cli.js';
const FIX = 'tests/fixtures/tiny-v3-a';
const root = mkdtempSync(`${tmpdir()}/deepwgsl-cli-`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (npm test does)`);
});

/** Runs the CLI (through a shell where `pipe` reads its stdout); rc, stdout, stderr and seconds taken. */
function cli(args: string[], pipe?: string): { rc: number; stdout: string; stderr: string; s: number } {
  const t0 = performance.now();
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = pipe ? spawnSync('bash', ['-c', `node ${CLI} ${quoted} | ${pipe}`], { encoding: 'utf8' }) : spawnSync('node', [CLI, ...args], { encoding: 'utf8' });
  return { rc: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, s: (performance.now() - t0) / 1e3 };
}

describe('deepwgsl: hostile flags are refused by name, before a GPU or a file is touched', () => {
  const loads = `${root}/loads.json`;
  beforeAll(() => writeFileSync(loads, JSON.stringify({ layers: [[1, 2, 3, 4], [4, 3, 2, 1]] })));
  const eplb = ['eplb', '--load', loads, '--groups', '2', '--nodes', '1', '--gpus', '2'];
  const cases: [string[], RegExp][] = [
    [[...eplb, '--replicas', '0x10'], /--replicas: expected an integer in 1\.\.4294967295, got '0x10'/],
    [[...eplb, '--replicas', '1e1'], /--replicas: expected an integer in 1\.\.4294967295, got '1e1'/],
    [[...eplb, '--replicas', ''], /--replicas: expected an integer in 1\.\.4294967295, got ''/],
    [['eplb', '--load', '/dev/zero', '--replicas', '4', '--groups', '2', '--nodes', '1', '--gpus', '2'], /--load \/dev\/zero: over 268435456 bytes; not the file this flag takes/],
    [['logits', '--model', FIX, '--tokens', '1,,2'], /--tokens: an empty field \(field 2 of '1,,2'\) is not a token id: expected decimal ids in 0\.\.511/],
    [['logits', '--model', FIX, '--tokens', '0x1ff'], /--tokens: '0x1ff' \(field 1 of '0x1ff'\) is not a token id/],
    [['logits', '--model', FIX, '--tokens', '1e1'], /--tokens: '1e1' \(field 1 of '1e1'\) is not a token id/],
    [['logits', '--model', FIX, '--tokens', '1', '--quantize', 'int4'], /--quantize: expected 'fp8', got 'int4'/],
    [['logits', '--model', FIX, '--tokens', '1', '--activations', 'bf16'], /--activations: expected 'f32' or 'fp8', got 'bf16'/],
    [['logits', '--model', FIX, '--tokens', '1', '--compare', '/dev/zero'], /--compare \/dev\/zero: over 268435456 bytes/],
    [['generate', '--model', FIX, '--tokens', '1', '--quantize', 'int4'], /--quantize: expected 'fp8', got 'int4'/],
    [['generate', '--model', FIX, '--tokens', '1', '--max-new-tokens=-5'], /--max-new-tokens: expected an integer in 1\.\.4294967295, got '-5'/],
    [['generate', '--model', FIX, '--tokens', '1', '--max-new-tokens', '5000'], /--max-new-tokens 5000 after a prompt of 1 tokens: 5001 positions, over this model's max_position_embeddings \(4096\)/],
    [['generate', '--model', FIX, '--tokens', '1', '--temperature', '1e999'], /--temperature: expected a finite number >= 0, got '1e999'/],
    [['generate', '--model', FIX, '--tokens', '1', '--temperature', '1', '--top-p', '0'], /--top-p: expected a number in \(0, 1\], got '0'/],
    [['generate', '--model', FIX, '--tokens', '1', '--top-k', '5'], /--top-k: only with --temperature T/],
    [['generate', '--model', FIX, '--tokens', '1', '--greedy', '--temperature', '1'], /give --greedy or --temperature T, not both/],
    [['bench', '--ceilings', '--iters', '0'], /--iters: expected an integer in 1\.\.2048, got '0'/],
    [['cast', '--m', '40000.5'], /--m: expected an integer in 1\.\.4294967295, got '40000.5'/],
    [['gemm', '--a', 'int4'], /--a: expected 'e4m3' or 'f32', got 'int4'/],
    [['synth', '--preset', 'v9', '--out', `${root}/never`], /--preset: expected 'v2-lite' or 'v3-tiny' or 'v2-tiny', got 'v9'/],
    [['synth', '--preset', 'v2-tiny', '--out', `${root}/never`, '--layers', '2000000'], /num_hidden_layers 2000000 and n_routed_experts 8 imply \d+ tensors, over the 1048576/],
    [['cast', '--json'], /Unknown option '--json'/],
  ];
  for (const [args, re] of cases) {
    it(args.map((a) => a.replace(root, '$TMP')).join(' '), () => {
      const r = cli(args);
      expect(r.rc).toBe(1);
      // One line, the error: no adapter was opened, nothing else printed.
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
      expect(r.stdout).toBe('');
      expect(existsSync(`${root}/never`)).toBe(false);
    });
  }

  it('a config of 2,000,000 layers or a shard index escaping the folder: info refuses at once', () => {
    const dir = `${root}/hostile`;
    mkdirSync(dir);
    const cfg = JSON.parse(readFileSync(`${FIX}/config.json`, 'utf8'));
    writeFileSync(`${dir}/config.json`, JSON.stringify({ ...cfg, num_hidden_layers: 2_000_000 }));
    let r = cli(['info', '--model', dir]);
    expect([r.rc, r.stderr]).toEqual([1, expect.stringMatching(/config.json: num_hidden_layers 2000000 and n_routed_experts 16 imply \d+ tensors/)]);
    expect(r.s).toBeLessThan(5);
    writeFileSync(`${dir}/config.json`, JSON.stringify(cfg));
    writeFileSync(`${dir}/model.safetensors.index.json`, JSON.stringify({ weight_map: { 'model.norm.weight': '../../../../etc/passwd' } }));
    r = cli(['info', '--model', dir]);
    expect([r.rc, r.stderr]).toEqual([1, expect.stringMatching(/weight_map\['model.norm.weight'\] names the shard "..\/..\/..\/..\/etc\/passwd", which is not a file inside/)]);
  });
});

describe('deepwgsl output', () => {
  it('JSON piped into a slow reader arrives whole (it was cut at 65,536 bytes)', () => {
    const loads = `${root}/big-loads.json`;
    writeFileSync(loads, JSON.stringify({ layers: Array.from({ length: 61 }, (_, l) => Array.from({ length: 256 }, (_, e) => (l * 31 + e * 17) % 1000)) }));
    const r = cli(['eplb', '--load', loads, '--replicas', '288', '--groups', '8', '--nodes', '4', '--gpus', '32', '--json'], '(sleep 0.5; cat)');
    expect(r.stdout.length).toBeGreaterThan(3 * 65536);
    expect(JSON.parse(r.stdout).phy2log).toHaveLength(61);
  });

  it('logits --json of a model with 32 positions, piped: 20 rows whole (the cache took 64 positions at least, and the JSON was cut)', () => {
    const dir = `${root}/m32`;
    mkdirSync(dir);
    writeFileSync(`${dir}/config.json`, JSON.stringify({ ...JSON.parse(readFileSync(`${FIX}/config.json`, 'utf8')), max_position_embeddings: 32 }));
    writeFileSync(`${dir}/model.safetensors`, readFileSync(`${FIX}/model.safetensors`));
    const tokens = Array.from({ length: 20 }, (_, i) => i + 1).join(',');
    const r = cli(['logits', '--model', dir, '--tokens', tokens, '--json'], '(sleep 0.5; cat)');
    expect(r.stdout.length).toBeGreaterThan(65536);
    const rows = JSON.parse(r.stdout).logits as number[][];
    expect(rows.map((x) => x.length)).toEqual(new Array(20).fill(512));
    expect(rows.flat().every(Number.isFinite)).toBe(true);
    const over = cli(['generate', '--model', dir, '--tokens', tokens, '--max-new-tokens', '13']);
    expect(over.stderr).toMatch(/--max-new-tokens 13 after a prompt of 20 tokens: 33 positions, over this model's max_position_embeddings \(32\)/);
  });

  it('synth --out never overwrites a checkpoint without --force; with it, no shard or index of the old one stays', () => {
    const dir = `${root}/synth`;
    mkdirSync(dir);
    // A lone model.safetensors (no config.json beside it) was overwritten.
    writeFileSync(`${dir}/model.safetensors`, 'mine');
    let r = cli(['synth', '--preset', 'v2-tiny', '--out', dir]);
    expect([r.rc, r.stderr]).toEqual([1, expect.stringMatching(/already holds a checkpoint \(model.safetensors\); pick an empty directory, or force \(--force\) to replace it/)]);
    expect(readFileSync(`${dir}/model.safetensors`, 'utf8')).toBe('mine');
    // Sharded over it with --force, then one file over the shards: each leaves exactly its own files.
    expect(cli(['synth', '--preset', 'v2-tiny', '--out', dir, '--shard-mb', '1', '--force']).rc).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors', 'model.safetensors.index.json']);
    r = cli(['synth', '--preset', 'v2-tiny', '--out', dir]);
    expect(r.stderr).toMatch(/already holds a checkpoint \(config.json, model-00001/);
    expect(cli(['synth', '--preset', 'v2-tiny', '--out', dir, '--force']).rc).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(cli(['info', '--model', dir]).rc).toBe(0);
  });

  it('bench --trace refuses an existing file before the run, unless --force', () => {
    const trace = `${root}/trace.json`;
    writeFileSync(trace, '{"mine": 1}');
    const r = cli(['bench', '--ceilings', '--trace', trace]);
    expect([r.rc, r.stderr.trim()]).toEqual([1, `deepwgsl: --trace ${trace}: the file exists; pass --force to replace it`]);
    expect(readFileSync(trace, 'utf8')).toBe('{"mine": 1}');
    expect(cli(['bench', '--ceilings', '--force']).stderr).toMatch(/--force: only with --trace FILE/);
  });

  it('writeOutput goes through a temporary name, refuses an existing file, replaces it with force; readInput caps what it reads', async () => {
    const f = `${root}/out.json`;
    await writeOutput(f, 'one', 'trace', false);
    await expect(writeOutput(f, 'two', 'trace', false)).rejects.toThrow(`--trace ${f}: the file exists; pass --force to replace it`);
    await expect(refuseExisting(f, 'trace', false)).rejects.toThrow(/the file exists/);
    await writeOutput(f, 'two', 'trace', true);
    expect(readFileSync(f, 'utf8')).toBe('two');
    expect(readdirSync(root).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await expect(writeOutput(`${root}/no/such/dir/x.json`, 'x', 'trace', true)).rejects.toThrow(/--trace .*x.json: cannot write/);
    expect(await readInput(f, 'load', 3)).toBe('two');
    await expect(readInput(f, 'load', 2)).rejects.toThrow(`--load ${f}: over 2 bytes`);
    await expect(readInput(`${root}/missing.json`, 'load')).rejects.toThrow(/--load .*missing.json: cannot open \(ENOENT/);
  });
});
