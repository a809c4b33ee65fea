import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `hashwire render systemd` as an operator runs it, and the units it writes checked by systemd
// itself (`systemd-analyze verify`: syntax, every ExecStart program present and executable).

const CLI_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
let dir: string;

beforeAll(() => {
  // A space and a '%' in the path: the units must quote and escape them for systemd.
  dir = join(mkdtempSync(join(tmpdir(), 'hw-systemd-')), 'pool 100% live');
  mkdirSync(dir, { recursive: true });
});
afterAll(() => {
  if (dir) rmSync(join(dir, '..'), { recursive: true, force: true });
});

function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

function writeConfig(name: string, extra: string): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    [
      '[[chains]]',
      'coin = "litecoin"',
      'network = "regtest"',
      'daemons = [{ url = "http://rpc:pw@127.0.0.1:19443/" }]',
      'payouts = [{ address = "rltc1qqurswpc8qurswpc8qurswpc8qurswpc8ntpxlg" }]',
      '[[chains]]',
      'id = "ltc"',
      'coin = "litecoin"',
      'network = "regtest"',
      'bind = "0.0.0.0:3334"',
      'daemons = [{ url = "http://rpc:pw@127.0.0.1:19543/" }]',
      'payouts = [{ address = "rltc1qqurswpc8qurswpc8qurswpc8qurswpc8ntpxlg" }]',
      extra,
      '',
    ].join('\n'),
  );
  return file;
}

function field(unit: string, key: string): string[] {
  return [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1] as string);
}

describe('hashwire render systemd', () => {
  it('writes a unit per service, the follower and a target, and systemd-analyze verify accepts them', async () => {
    const config = writeConfig(
      'pool.toml',
      '[jobmanager]\ncount = 1\n[reporter]\ncount = 1\n[stratum]\ncount = 2',
    );
    const out = join(dir, 'units');
    const render = await run(process.execPath, [
      CLI_BIN,
      'render',
      'systemd',
      '--config',
      config,
      '--out-dir',
      out,
    ]);
    expect(render.code, render.output).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toEqual([
      'hashwire-api-1.service',
      'hashwire-follow-haproxy.service',
      'hashwire-jobmanager-litecoin-regtest-1.service',
      'hashwire-jobmanager-ltc-1.service',
      'hashwire-reporter-litecoin-regtest-1.service',
      'hashwire-reporter-ltc-1.service',
      'hashwire-stratum-litecoin-regtest-1.service',
      'hashwire-stratum-litecoin-regtest-2.service',
      'hashwire-stratum-ltc-1.service',
      'hashwire-stratum-ltc-2.service',
      'hashwire.target',
    ]);
    const verify = await run('systemd-analyze', ['verify', ...files.map((f) => join(out, f))]);
    expect(verify.output).toBe('');
    expect(verify.code).toBe(0);

    const stratum = readFileSync(join(out, 'hashwire-stratum-ltc-2.service'), 'utf8');
    // The 4th stratum instance (chain after chain), with the config path quoted and % doubled.
    expect(field(stratum, 'ExecStart')).toEqual([
      `${process.execPath} ${CLI_BIN} run stratum --instance 4 --config "${config.replace('%', '%%')}"`,
    ]);
    // Ordered after every other unit, so stopping the target drains stratum servers first.
    const after = field(stratum, 'After')[0]?.split(' ') ?? [];
    for (const other of files.filter((f) => !f.includes('stratum') && f.endsWith('.service'))) {
      expect(after).toContain(other);
    }
    // The default drain: 1 s announce, 19 more waves of 500 a second apart for 10,000 sessions,
    // 30 s grace and 30 s spool flush = 80 s, under the configured 90 s; plus a margin.
    const stratumStop = Number(field(stratum, 'TimeoutStopSec')[0]);
    expect(stratumStop).toBeGreaterThan(90);
    expect(field(stratum, 'KillMode')).toEqual(['mixed']);
    const jobmanager = readFileSync(join(out, 'hashwire-jobmanager-ltc-1.service'), 'utf8');
    expect(Number(field(jobmanager, 'TimeoutStopSec')[0])).toBeGreaterThanOrEqual(15);
    // The api: one instance for the whole pool, stopped before the stratum servers' drain ends.
    const api = readFileSync(join(out, 'hashwire-api-1.service'), 'utf8');
    expect(field(api, 'ExecStart')).toEqual([
      `${process.execPath} ${CLI_BIN} run api --instance 1 --config "${config.replace('%', '%%')}"`,
    ]);
    expect(Number(field(api, 'TimeoutStopSec')[0])).toBeGreaterThanOrEqual(10);
    const follower = readFileSync(join(out, 'hashwire-follow-haproxy.service'), 'utf8');
    expect(field(follower, 'ExecStart')[0]).toMatch(/ follow-haproxy --config /);
    const target = readFileSync(join(out, 'hashwire.target'), 'utf8');
    expect(field(target, 'Wants')[0]?.split(' ').sort()).toEqual(files.filter((f) => f.endsWith('.service')));
  });

  it("gives stratum servers a stop timeout covering a long configured drain, beyond systemd's 90 s", async () => {
    const config = writeConfig(
      'long-drain.toml',
      '[stratum]\ncount = 1\nflushTimeoutMs = 60000\n[stratum.drain]\ngraceMs = 300000\nwaveSize = 100\nwaveIntervalMs = 2000\n[stratum.limits]\nmaxConnections = 5000\n[haproxy]\nenabled = false',
    );
    const out = join(dir, 'long');
    const render = await run(process.execPath, [
      CLI_BIN,
      'render',
      'systemd',
      '--config',
      config,
      '--out-dir',
      out,
      '--set',
      'reporter.count=2',
    ]);
    expect(render.code, render.output).toBe(0);
    const files = readdirSync(out);
    expect(files).not.toContain('hashwire-follow-haproxy.service');
    const verify = await run('systemd-analyze', ['verify', ...files.map((f) => join(out, f))]);
    expect(verify.output).toBe('');
    // 1 s + 49 waves × 2 s + 300 s grace + 60 s flush = 459 s of drain.
    const stratum = readFileSync(join(out, 'hashwire-stratum-ltc-1.service'), 'utf8');
    expect(Number(field(stratum, 'TimeoutStopSec')[0])).toBeGreaterThanOrEqual(459 + 15);
    expect(field(stratum, 'ExecStart')[0]).toMatch(/ --set reporter\.count=2$/);
    expect(render.output).toMatch(/TimeoutStopSec: stratum \d+ s/);
  });

  it('refuses to render without --out-dir or --config, naming what is missing (exit 2)', async () => {
    const noDir = await run(process.execPath, [
      CLI_BIN,
      'render',
      'systemd',
      '--config',
      writeConfig('x.toml', ''),
    ]);
    expect(noDir.code).toBe(2);
    expect(noDir.output).toContain('render systemd needs --out-dir DIR');
    const noConfig = await run(process.execPath, [CLI_BIN, 'render', 'systemd', '--out-dir', dir]);
    expect(noConfig.code).toBe(2);
    expect(noConfig.output).toContain('render systemd needs --config FILE');
  });
});
