import { writeFileSync } from 'node:fs';
import { type MachineInfo, machineInfo } from './machine.js';
import { suites } from './suites/index.js';
import type { BenchResult, BenchSuite } from './types.js';

export { machineInfo, type MachineInfo } from './machine.js';
export { opsPerSecond, opsPerSecondAsync, percentile } from './measure.js';
export { suites } from './suites/index.js';
export type { BenchContext, BenchResult, BenchSuite } from './types.js';

export interface BenchReport {
  machine: MachineInfo;
  results: BenchResult[];
}

export interface RunBenchOptions {
  /** Suite names to run; all when empty. */
  names?: string[];
  /** Write the report as JSON here. */
  jsonFile?: string;
  quick?: boolean;
  log?: (message: string) => void;
}

export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

export function selectSuites(names: string[] = []): BenchSuite[] {
  if (names.length === 0) return [...suites];
  return names.map((name) => {
    const suite = suites.find((s) => s.name === name);
    if (!suite) {
      throw new BenchUsageError(
        `unknown bench suite "${name}"; available: ${suites.map((s) => s.name).join(', ')}`,
      );
    }
    return suite;
  });
}

export async function runBench(options: RunBenchOptions = {}): Promise<BenchReport> {
  const selected = selectSuites(options.names);
  const log = options.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const results: BenchResult[] = [];
  for (const suite of selected) {
    log(`suite ${suite.name}: ${suite.description}`);
    results.push(...(await suite.run({ log, quick: options.quick ?? false })));
  }
  const report: BenchReport = { machine: machineInfo(), results };
  if (options.jsonFile) writeFileSync(options.jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return Number(value.toPrecision(4)).toString();
}

/** A plain-text table of a report, for people. */
export function formatTable(report: BenchReport): string {
  const rows = [['result', 'value', 'unit', 'baseline', 'ratio', 'target', 'met']];
  for (const r of report.results) {
    const ratio =
      r.baseline && r.baseline.value !== 0
        ? `${(r.higherIsBetter ? r.value / r.baseline.value : r.baseline.value / r.value).toFixed(2)}x`
        : '';
    rows.push([
      r.name,
      formatNumber(r.value),
      r.unit,
      r.baseline ? `${formatNumber(r.baseline.value)} (${r.baseline.name})` : '',
      ratio,
      r.target ?? '',
      r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) =>
    row
      .map((cell, i) => (i === 1 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const m = report.machine;
  return `machine: ${m.cpu}, ${m.cores} cores, node ${m.node}\n${lines.join('\n')}\n`;
}
