import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [
    {
      name: 'wgsl-as-text',
      transform(code, id) {
        if (id.endsWith('.wgsl')) return { code: `export default ${JSON.stringify(code)};`, map: null };
      },
    },
  ],
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    // One GPU context at a time: software adapters are slow and single files keep output readable.
    fileParallelism: false,
  },
});
