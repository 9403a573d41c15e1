// The README's "Use it in your app" snippets are the programs tests/package/run.mjs runs from the
// installed tarball (examples/app-*): each file's whole text must stand in the README as it is.
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root), 'utf8');
const readme = read('README.md');
const examples = readdirSync(new URL('examples/', root)).filter((d) => d.startsWith('app-'));
const files = examples.flatMap((d) => readdirSync(new URL(`examples/${d}/`, root)).map((f) => `examples/${d}/${f}`));

describe('README: Use it in your app', () => {
  it('has the consumer programs to quote', () => {
    expect(files).toEqual(expect.arrayContaining(['examples/app-node/main.mjs', 'examples/app-vite/main.js', 'examples/app-vite/index.html', 'examples/app-kernel/main.mjs']));
  });

  it.each(files)('quotes %s verbatim', (file) => {
    expect(readme).toContain(read(file).trimEnd());
  });

  it('publishes the same version to npm and JSR', () => {
    expect(JSON.parse(read('deno.json')).version).toBe(JSON.parse(read('package.json')).version);
  });
});
