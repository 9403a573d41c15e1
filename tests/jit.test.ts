import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { GpuContext } from '../src/gpu/context.ts';
import { tunedConfig } from '../src/jit/autotune.ts';
import { FileTuningStore, gpuKey } from '../src/jit/tuning-cache.ts';
import { unrollLoops } from '../src/jit/unroll.ts';
import * as d from 'typegpu/data';
import { composeWgsl, numberLines, sourceLocation } from '../src/jit/compose.ts';

describe('composeWgsl', () => {
  const code = composeWgsl({
    kernel: 'demo',
    config: { wg: 64 },
    template: { file: 'demo/main.wgsl', code: '@group(0) @binding(0) var<uniform> p: Params;\nfn main() {\n  let a = WG;\n}' },
    helpers: [{ file: 'common/h.wgsl', code: 'fn h() -> u32 {\n  return 1u;\n}' }],
    consts: { WG: 64, ON: true, NEG: { i32: -3 }, SCALE: { f32: 448 } },
    aliases: { T: 'f32' },
    structs: { Params: d.struct({ m: d.u32 }) },
    enables: ['f16'],
  });

  it('writes enables first, then typed constants and aliases', () => {
    const lines = code.split('\n');
    expect(lines[0]).toBe('enable f16;');
    expect(code).toContain('const WG: u32 = 64u;');
    expect(code).toContain('const ON: bool = true;');
    expect(code).toContain('const NEG: i32 = -3i;');
    expect(code).toContain('const SCALE: f32 = 448.0f;');
    expect(code).toContain('alias T = f32;');
    expect(code).toMatch(/struct Params \{\s*m: u32,\s*\}/);
  });

  it('maps generated lines back to the .wgsl file and line', () => {
    const lines = code.split('\n');
    const at = lines.findIndex((l) => l.includes('let a = WG;')) + 1;
    expect(sourceLocation(code, at)).toBe('demo/main.wgsl:3');
    const h = lines.findIndex((l) => l.includes('return 1u;')) + 1;
    expect(sourceLocation(code, h)).toBe('common/h.wgsl:2');
    expect(sourceLocation(code, 2)).toBe('generated prelude');
    expect(numberLines('a\nb', new Set([2]))).toBe('  1 | a\n>>2 | b');
  });
});

describe('unrollLoops and member names', () => {
  it('replaces the loop variable, not a vector member of the same name', () => {
    const out = unrollLoops('// @unroll\nfor (var w = 0u; w < N; w++) {\n  s += v[w].w;\n}\n', { N: 2 });
    expect(out).toContain('v[0u].w');
    expect(out).toContain('v[1u].w');
    expect(out).not.toContain('.0u');
  });
});

describe('FileTuningStore with a damaged tuning.json', () => {
  const dir = mkdtempSync(`${tmpdir()}/deepwgsl-tuning-`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const ctx = { runtime: 'node', adapterInfo: { vendor: 'v', architecture: 'a', device: 'd', description: 'x' } } as unknown as GpuContext;

  it('null, garbage, a list or a number is ignored with one warning, and the next set() rewrites it', async () => {
    for (const [i, text] of ['null', '{"x": ', '[1, 2]', '42'].entries()) {
      const file = `${dir}/t${i}.json`;
      writeFileSync(file, text);
      const store = new FileTuningStore(file);
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        expect(await store.get('k')).toBeUndefined();
        expect(await tunedConfig(ctx, { kernel: 'gemm', shapeKey: 's', candidates: [{ a: 1 }], store })).toBeUndefined();
        expect(warn).toHaveBeenCalledTimes(1);
        expect(String(warn.mock.calls[0][0])).toMatch(new RegExp(`tuning cache ${file} is not a JSON object of tuned configs \\(.+\\); ignoring it`));
        await store.set('k', { config: { a: 1 } });
        expect(await store.get('k')).toEqual({ config: { a: 1 } });
        expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ k: { config: { a: 1 } } });
      } finally {
        warn.mockRestore();
      }
    }
  });

  it('entries that are not configs are no winner', async () => {
    const file = `${dir}/entries.json`;
    const key = (s: string) => `${gpuKey(ctx)}|gemm|${s}`;
    writeFileSync(file, JSON.stringify({ [key('a')]: null, [key('b')]: 'x', [key('c')]: { config: { a: 2 } } }));
    const store = new FileTuningStore(file);
    for (const s of ['a', 'b', 'c']) expect(await tunedConfig(ctx, { kernel: 'gemm', shapeKey: s, candidates: [{ a: 1 }], store })).toBeUndefined();
  });
});
