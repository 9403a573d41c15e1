import { defineConfig } from 'vitest/config';
import { wgslText } from './scripts/wgsl-text.ts';

export default defineConfig({
  plugins: [wgslText],
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    // One GPU context at a time: software adapters are slow and single files keep output readable.
    fileParallelism: false,
  },
});
