// Browser driver page script: runs the conformance list in the tab and reports to puppeteer.
import { createContext } from '../../src/gpu/context.ts';
import { runAll } from '../conformance/runner.ts';

const w = window as unknown as { __done?: { passed: number; failed: number; skipped: number; error?: string } };
try {
  const ctx = await createContext({ log: (l) => console.log(l) });
  w.__done = await runAll(ctx, 'chromium', (l) => console.log(l));
} catch (e) {
  console.log(`chromium: ${(e as Error).message}`);
  w.__done = { passed: 0, failed: 1, skipped: 0, error: String(e) };
}
