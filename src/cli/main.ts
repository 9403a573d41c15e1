// deepwgsl command line. The same bundle runs under Node (`npx deepwgsl`) and Deno (`deno run -A dist/cli.js`).
import { parseArgs } from 'node:util';
import { createContext, type GpuContext } from '../gpu/context.ts';
import { basicCommands } from './basic.ts';
import type { Command } from './command.ts';
import { eplbCommands } from './eplb.ts';
import { gemmCommands } from './gemm.ts';
import { modelCommands } from './model.ts';
import { synthCommands } from './synth.ts';

// Each capability adds its commands here (and its bench suite to SUITES in src/bench/suites.ts).
const COMMANDS: Command[] = [...basicCommands, ...eplbCommands, ...gemmCommands, ...modelCommands, ...synthCommands];

const USAGE = `deepwgsl: DeepSeek's inference kernels on WebGPU

usage:
${COMMANDS.flatMap((c) => c.usage.map((u) => `  ${u}`)).join('\n')}

every command: --verbose (or DEEPWGSL_VERBOSE=1) lets the Vulkan layers and drivers print their own diagnostics.
environment: DEEPWGSL_JIT_DEBUG=1 prints generated WGSL; DEEPWGSL_PRINT_CONFIGS=1 prints autotune winners;
DEEPWGSL_JIT_CACHE_DIR sets where tuned configs are kept (default ~/.cache/deepwgsl).`;

export async function main(argv: string[]): Promise<void> {
  const name = argv[0];
  if (!name || name === '--help' || name === '-h' || name === 'help') return console.log(USAGE);
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) throw new Error(`unknown command '${name}'\n\n${USAGE}`);
  const { values, positionals } = parseArgs({
    args: argv.slice(1),
    allowPositionals: true,
    options: { ...cmd.options, help: { type: 'boolean', short: 'h', default: false }, verbose: { type: 'boolean', short: 'v' } },
  });
  if (values.help) return console.log(cmd.usage.join('\n'));
  if (positionals.length) throw new Error(`deepwgsl ${name}: unexpected argument '${positionals[0]}'`);
  let ctx: Promise<GpuContext> | undefined;
  try {
    await cmd.run(values, () => (ctx ??= createContext({ verbose: values.verbose as boolean | undefined })));
  } finally {
    (await ctx?.catch(() => undefined))?.destroy();
  }
}

/** Resolves once everything written to `stream` so far has reached the OS (a pipe takes it as its reader reads). */
const drained = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));

// process.exit (the GPU's threads would keep the process alive) drops what a pipe has not taken
// yet: `logits --json | reader` was cut at 64 KiB. Exit once stdout and stderr are drained.
main(process.argv.slice(2))
  .then(
    () => 0,
    (e) => {
      console.error(`deepwgsl: ${(e as Error).message}`);
      return 1;
    },
  )
  .then(async (code) => {
    await Promise.all([drained(process.stdout), drained(process.stderr)]);
    process.exit(code);
  });
