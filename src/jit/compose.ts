// WGSL composition: a generated prelude (enables, config constants, aliases) in front of shared
// helper files and the kernel's template, all real .wgsl files under shaders/. Struct schemas for
// parameters come from typegpu and are resolved into the module by name.
import tgpu from 'typegpu';
import type { AnyWgslData } from 'typegpu/data';
import { unrollLoops } from './unroll.ts';

/** A typed constant for the prelude. Plain numbers are u32 (non-negative integers) or f32. */
export type WgslConst = number | boolean | { i32: number } | { f32: number };

export interface WgslSource {
  /** File name, shown in compile errors. */
  file: string;
  code: string;
}

export interface KernelModule {
  kernel: string;
  /** The config that shaped this module: printed at the top of the generated code. */
  config: object;
  template: WgslSource;
  helpers?: WgslSource[];
  consts?: Record<string, WgslConst>;
  aliases?: Record<string, string>;
  structs?: Record<string, AnyWgslData>;
  enables?: string[];
}

function constDecl(name: string, v: WgslConst): string {
  if (typeof v === 'boolean') return `const ${name}: bool = ${v};`;
  if (typeof v === 'object' && 'i32' in v) return `const ${name}: i32 = ${v.i32}i;`;
  if (typeof v === 'object') return `const ${name}: f32 = ${formatF32(v.f32)};`;
  if (Number.isInteger(v) && v >= 0) return `const ${name}: u32 = ${v}u;`;
  return `const ${name}: f32 = ${formatF32(v)};`;
}

function formatF32(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`WGSL constant must be finite, got ${x}`);
  const s = x.toString();
  return /[.eE]/.test(s) ? `${s}f` : `${s}.0f`;
}

/** Marks where each source file starts, so compile errors can point into the .wgsl files. */
export const SOURCE_MARK = '// @source ';

export function composeWgsl(m: KernelModule): string {
  const prelude = [
    ...(m.enables ?? []).map((e) => `enable ${e};`),
    `// deepwgsl JIT: ${m.kernel} ${JSON.stringify(m.config)}`,
    ...Object.entries(m.consts ?? {}).map(([k, v]) => constDecl(k, v)),
    ...Object.entries(m.aliases ?? {}).map(([k, v]) => `alias ${k} = ${v};`),
  ].join('\n');
  // typegpu puts struct declarations in front without a line break: the leading newline keeps marks at line starts.
  const body = unrollLoops([...(m.helpers ?? []), m.template].map((s) => `\n${SOURCE_MARK}${s.file}\n${s.code.trimEnd()}\n`).join(''), m.consts);
  const resolved = m.structs && Object.keys(m.structs).length ? tgpu.resolve({ template: body, externals: m.structs }) : body;
  return `${prelude}\n${resolved}\n`;
}

/** Maps a line of a generated module back to (file, line) through the source marks. */
export function sourceLocation(code: string, line: number): string {
  const lines = code.split('\n');
  for (let i = Math.min(line, lines.length) - 1; i >= 0; i--) {
    if (lines[i].startsWith(SOURCE_MARK)) return `${lines[i].slice(SOURCE_MARK.length)}:${line - i - 1}`;
  }
  return 'generated prelude';
}

export function numberLines(code: string, mark: ReadonlySet<number> = new Set()): string {
  const lines = code.split('\n');
  const w = String(lines.length).length;
  return lines.map((l, i) => `${mark.has(i + 1) ? '>>' : '  '}${String(i + 1).padStart(w)} | ${l}`).join('\n');
}
