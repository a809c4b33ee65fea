import { benchCommand } from './bench.js';
import { demoCommand } from './demo.js';
import { simCommand } from './sim.js';

/** Raised for a bad command line: printed as one line with the usage hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const commands: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  demo: {
    summary:
      'a whole pool locally: redis, 2 litecoind, 2 each of jobmanager/reporter/stratum, 20 sim miners (no HAProxy/api yet)',
    run: demoCommand,
  },
  bench: { summary: 'run benchmark suites (table, --json FILE)', run: benchCommand },
  sim: { summary: 'run simulated stratum miners against a pool (--port P --username ADDR)', run: simCommand },
};

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const list = Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join('\n');
  return `usage: hashwire <command> [options]\n\ncommands:\n  ${'test'.padEnd(width)}  run the whole test suite (./hashwire test)\n${list}\n`;
}

/** Runs one CLI invocation and returns the exit code; never calls process.exit itself. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return 0;
  }
  const command = commands[name];
  if (!command)
    throw new UsageError(`unknown command "${name}"; commands: test, ${Object.keys(commands).join(', ')}`);
  return command.run(rest);
}
