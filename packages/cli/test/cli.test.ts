import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suites } from '@hashwire/bench';
import { main, usage } from '@hashwire/cli';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CapturedOutput, captureOutput } from './capture-output.js';

let dir: string;
let output: CapturedOutput;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hw-cli-'));
  output = captureOutput();
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    output.out += `${args.join(' ')}\n`;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe('hashwire cli', () => {
  it('lists its commands', async () => {
    expect(await main(['help'])).toBe(0);
    expect(output.out).toBe(usage());
    expect(output.out).toMatch(/bench/);
    expect(output.out).toMatch(/demo/);
  });

  it('refuses an unknown command, naming it and the known ones', async () => {
    await expect(main(['frobnicate'])).rejects.toThrow(
      /unknown command "frobnicate"; commands: test, circusd, demo, bench/,
    );
  });

  it('runs every bench suite and writes the JSON report with machine and baselines', async () => {
    const file = join(dir, 'bench.json');
    expect(await main(['bench', '--quick', '--json', file])).toBe(0);
    const report = JSON.parse(readFileSync(file, 'utf8'));
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
    expect(typeof report.machine.cpu).toBe('string');
    expect(report.results.length).toBeGreaterThan(0);
    for (const r of report.results) {
      expect(Object.keys(r)).toEqual(
        expect.arrayContaining(['name', 'value', 'unit', 'higherIsBetter', 'baseline']),
      );
      expect(r.value, r.name).toBeGreaterThan(0);
      if (r.baseline) expect(r.baseline.value, `${r.name} baseline`).toBeGreaterThan(0);
    }
    // The table names each result next to its baseline.
    for (const r of report.results) expect(output.out).toContain(r.name);
    // Every suite, quick mode, on the 2-core machine: 120 s at load average 5–7, 173 s at 14–21
    // (2026-12-06, stratum-master 36 s of it), far more when the whole test suite runs beside it.
  }, 240_000);

  it('bench --help names every suite with what it measures', async () => {
    expect(await main(['bench', '--help'])).toBe(0);
    expect(output.out).toMatch(/^ {2}cluster +share batches → reporter \(RPC\) → a 3-master Redis Cluster/m);
    const rows = output.out.split('\n').map((line) => line.trim().split(/ {2,}/));
    for (const s of suites) expect(rows).toContainEqual([s.name, s.description]);
  });

  it('refuses an unknown bench suite, listing the available ones', async () => {
    await expect(main(['bench', 'nope'])).rejects.toThrow(
      /unknown bench suite "nope"; available: .*protocol/,
    );
  });
});
