import { parseArgs } from 'node:util';
import { formatTable, runBench, suites } from '@hashwire/bench';

export const benchUsage = `usage: hashwire bench [suite ...] [--json FILE] [--quick]

Runs benchmark suites (all when none is named), prints a table and, with --json,
writes { machine, results: [{ name, value, unit, higherIsBetter, baseline }] }.

suites: ${suites.map((s) => s.name).join(', ')}`;

export async function benchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(benchUsage);
    return 0;
  }
  const report = await runBench({
    names: positionals,
    quick: values.quick ?? false,
    ...(values.json ? { jsonFile: values.json } : {}),
  });
  process.stdout.write(formatTable(report));
  if (values.json) console.log(`wrote ${values.json}`);
  return 0;
}
