// Loop unrolling for WGSL templates. WGSL has no unroll attribute, and a register tile kept in a
// function-scope array is only promoted to registers when every index is a constant: a loop marked
//   // @unroll
//   for (var i = 0u; i < TM; i++) { ... }
// is replaced by one block per iteration with `i` written as a literal. Bounds are literals or
// names of the module's integer consts. Marked loops may nest.
import type { WgslConst } from './compose.ts';

const MARK = /^([ \t]*)\/\/ @unroll\n[ \t]*for \(var (\w+) = 0u; \2 < (\w+); \2\+\+\) \{\n/m;

function closingBrace(code: string, open: number): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === '{') depth++;
    else if (code[i] === '}' && --depth === 0) return i;
  }
  throw new Error('unrollLoops: unbalanced braces after an @unroll loop');
}

export function unrollLoops(code: string, consts: Record<string, WgslConst> = {}): string {
  for (let m = MARK.exec(code); m; m = MARK.exec(code)) {
    const [head, indent, v, boundName] = m;
    const bound = /^\d+$/.test(boundName) ? Number(boundName) : consts[boundName];
    if (typeof bound !== 'number' || !Number.isInteger(bound)) throw new Error(`unrollLoops: bound '${boundName}' is not an integer const`);
    const open = m.index + head.length - 2;
    const close = closingBrace(code, open);
    const body = code.slice(open + 1, close);
    const copies = Array.from({ length: bound }, (_, k) => `${indent}{${body.replace(new RegExp(`(?<!\\.)\\b${v}\\b`, 'g'), `${k}u`)}${indent}}`);
    code = code.slice(0, m.index) + copies.join('\n') + code.slice(close + 1);
  }
  return code;
}
