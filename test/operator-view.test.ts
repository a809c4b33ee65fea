// Issue 16, "Operator's view": what an operator reads from a running pool. The jobmanager's log
// (templates, leadership, blocks with the daemons' verdict, daemon errors), each service's real
// version, its load in `hashwire status`, the Prometheus target list, and the pool's hashrate
// series, from real processes on real Redis and litecoind with sim miners mining.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis } from '@hashwire/registry';
import {
  type LitecoinRegtest,
  type RedisServer,
  type SimMiners,
  startLitecoinRegtest,
  startRedis,
  startSimMiners,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { parseExposition } from './docs-parse.js';
import {
  type ServiceProcess,
  killService,
  regtestJobmanagerConfig,
  regtestReporterConfig,
  regtestStratumConfig,
  spawnService,
} from './service-process.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cliBin = join(root, 'packages/cli/dist/bin.js');
const CHAIN = 'litecoin-regtest';
/** Dyadic: the credited difficulty is an exact multiple of the shares credited. */
const DIFF = 2 ** -9;
const WORKERS = 3;

let ltc: LitecoinRegtest;
let redisServer: RedisServer;
let miners: SimMiners | undefined;
let spoolDir: string;
const prefix = `ov${randomBytes(3).toString('hex')}:`;
const services: Record<'jobmanager' | 'stratum' | 'reporter', ServiceProcess> = {} as never;
/** Every JSON log line the jobmanager wrote after its ready line, and the ones before it. */
const jmLog: Record<string, unknown>[] = [];

const parseLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const logged = (msg: RegExp) => jmLog.filter((l) => typeof l.msg === 'string' && msg.test(l.msg));

/** The events of a stream (`events:{<chain>}` or `events:{pool}`), in order: type and payload. */
async function streamEvents(stream: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  const redis = connectRedis(redisServer.url, 'test-events');
  try {
    const keys = createKeyBuilder({ prefix });
    const key = stream === 'pool' ? keys.poolEvents() : keys.events(stream);
    const entries = (await redis.xrange(key, '-', '+')) as [string, string[]][];
    return entries.map(([, fields]) => ({
      type: fields[fields.indexOf('type') + 1]!,
      data: JSON.parse(fields[fields.indexOf('data') + 1]!) as Record<string, unknown>,
    }));
  } finally {
    redis.disconnect();
  }
}

async function hashwire(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [cliBin, ...args], { timeout: 60_000 });
}

async function statusJson(): Promise<
  { kind: string; id: string; version: string; load: number; loadFigures?: Record<string, number> }[]
> {
  const { stdout } = await hashwire('status', '--redis', redisServer.url, '--prefix', prefix, '--json');
  return JSON.parse(stdout);
}

/** The version every service should report: its package.json version and the checked-out commit. */
function expectedVersion(): string {
  const { version } = JSON.parse(readFileSync(join(root, 'packages/reporter/package.json'), 'utf8'));
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout: the version alone
  }
  return commit ? `${version}+${commit.slice(0, 7)}` : version;
}

beforeAll(async () => {
  [ltc, redisServer] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
  spoolDir = mkdtempSync(join(tmpdir(), 'hw-operator-view-'));
  const payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
  services.jobmanager = await spawnService(
    'jobmanager',
    regtestJobmanagerConfig({
      id: 'jm-ov',
      keyPrefix: prefix,
      redisUrl: redisServer.url,
      payout,
      nodes: ltc.nodes,
      // Load figures are published at each registry refresh (a third of the TTL): every 2 s.
      // Not shorter: on a loaded machine a 1.5 s TTL lapsed for real (a refresh came late), and
      // the pool stream then rightly said the jobmanager went down and came up again.
      extra: { logLevel: 'info', serviceTtlMs: 6000 },
    }),
  );
  // Lines written before the ready line are in its kept tail; the rest are collected from now.
  jmLog.push(...parseLines(services.jobmanager.logs()));
  createInterface({ input: services.jobmanager.child.stderr! }).on('line', (line) => {
    if (line.startsWith('{')) jmLog.push(JSON.parse(line));
  });
  services.reporter = await spawnService(
    'reporter',
    regtestReporterConfig({ id: 'rep-ov', keyPrefix: prefix, redisUrl: redisServer.url, nodes: ltc.nodes }),
  );
  services.stratum = await spawnService(
    'stratum',
    regtestStratumConfig({
      id: 'st-ov',
      keyPrefix: prefix,
      redisUrl: redisServer.url,
      spoolDir,
      port: 0,
      diff: DIFF,
    }),
  );
  // A clean start warns about nothing (it once closed its first jobmanager subscription itself
  // and logged that as a job feed error).
  expect(services.stratum.logs()).not.toMatch(/"level":"(warn|error)"/);
}, 180_000);

afterAll(async () => {
  await miners?.stop();
  for (const service of Object.values(services)) if (service) await killService(service);
  await Promise.all([ltc?.stop(), redisServer?.stop()]);
  if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
});

describe("operator's view (real litecoind, Redis, every service its own process)", () => {
  it('the jobmanager logs its leadership and a new template when the chain moves', async () => {
    onTestFailed(() => console.error(services.jobmanager.logs()));
    const leader = logged(/^jobmanager: leader/);
    expect(leader).toHaveLength(1);
    expect(leader[0]).toMatchObject({ name: 'jobmanager', id: 'jm-ov', chain: CHAIN, level: 'info' });
    expect(leader[0]!.epoch).toEqual(expect.any(Number));
    expect(logged(/^jobmanager: started$/)[0]).toMatchObject({ version: expectedVersion() });

    const [hash] = await ltc.nodes[0]!.mine(1);
    const height = (await ltc.rpc[0]!.call<{ height: number }>('getblockheader', [hash])).height;
    await waitFor(() => logged(/^jobmanager: new block template$/).some((l) => l.height === height + 1), {
      timeoutMs: 30_000,
      what: `a template log line for height ${height + 1}`,
    });
    const line = logged(/^jobmanager: new block template$/).find((l) => l.height === height + 1)!;
    expect(line).toMatchObject({ prevhash: hash, leader: true, level: 'info' });
    expect(line.transactions).toEqual(expect.any(Number));
  }, 60_000);

  it('miners mine: blocks are logged with the daemons verdict, status shows load and versions, the hashrate counter matches the credit', async () => {
    onTestFailed(() => {
      for (const [kind, s] of Object.entries(services)) console.error(`--- ${kind} ---\n${s.logs()}`);
    });
    const account = await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'bech32']);
    miners = await startSimMiners({
      host: '127.0.0.1',
      port: services.stratum.ready.port as number,
      workers: WORKERS,
      username: (i) => `${account}.w${i}`,
      algorithm: 'scrypt',
      hashesPerSecondLimit: 600,
    });

    // On regtest every share meets the network target: each accepted share is a block. Several
    // can be in flight at once, and their verdicts come in any order: wait for the first one's.
    const verdictOf = (hash: unknown) =>
      logged(/^jobmanager: block (accepted|rejected|stale|orphaned)/).find((l) => l.hash === hash);
    await waitFor(
      () => {
        const first = logged(/^jobmanager: block found, submitting/)[0];
        return first !== undefined && verdictOf(first.hash) !== undefined;
      },
      { timeoutMs: 60_000, what: "the first submitted block's verdict in the jobmanager log" },
    );
    const submitted = logged(/^jobmanager: block found, submitting/)[0]!;
    expect(submitted).toMatchObject({ hash: expect.stringMatching(/^[0-9a-f]{64}$/), level: 'info' });
    const verdict = verdictOf(submitted.hash)!;
    expect(verdict.state).toMatch(/^(accepted|stale|orphaned)$/);
    // Each daemon's own answer is in the line (blocks go to every daemon).
    expect((verdict.daemons as unknown[]).length).toBe(2);
    if (verdict.state === 'accepted') {
      expect(await ltc.rpc[0]!.call('getblockheader', [verdict.hash])).toMatchObject({ hash: verdict.hash });
    }

    // hashwire status: every service's real version and its load, from the registry.
    const version = expectedVersion();
    await waitFor(
      async () => {
        const rows = await statusJson();
        const of = (kind: string) => rows.find((r) => r.kind === kind)?.loadFigures ?? {};
        return (
          of('stratum').sessions === WORKERS &&
          (of('reporter').batchesPerS ?? 0) > 0 &&
          (of('reporter').sharesPerS ?? 0) > 0 &&
          (of('jobmanager').subscribers ?? 0) === 1 &&
          (of('jobmanager').jobsPerMin ?? 0) > 0
        );
      },
      { timeoutMs: 60_000, what: 'load figures of every service in hashwire status --json' },
    );
    const rows = await statusJson();
    expect(rows.map((r) => [r.kind, r.id, r.version])).toEqual([
      ['jobmanager', 'jm-ov', version],
      ['stratum', 'st-ov', version],
      ['reporter', 'rep-ov', version],
    ]);
    expect(rows.find((r) => r.kind === 'stratum')!.loadFigures).toEqual({
      sessions: WORKERS,
      connections: WORKERS,
    });
    // The table's LOAD column, as an operator reads it.
    const { stdout } = await hashwire('status', '--redis', redisServer.url, '--prefix', prefix);
    const table = stdout.split('\n');
    expect(table.find((l) => l.startsWith('stratum '))).toMatch(
      new RegExp(` ${WORKERS} sessions, ${WORKERS} conns +${version.replace('+', '\\+')} `),
    );
    expect(table.find((l) => l.startsWith('reporter '))).toMatch(/ [\d.]+ batches\/s, [\d.]+ shares\/s /);
    expect(table.find((l) => l.startsWith('jobmanager '))).toMatch(/ 1 subscribers, [\d.]+ jobs\/min /);

    // /stats and /metrics say the same version.
    const targetsFile = join(spoolDir, 'targets.json');
    await hashwire('status', '--redis', redisServer.url, '--prefix', prefix, '--prometheus-sd', targetsFile);
    const targets = JSON.parse(readFileSync(targetsFile, 'utf8')) as {
      targets: string[];
      labels: Record<string, string>;
    }[];
    expect(targets.map((t) => t.labels)).toEqual([
      { service: 'jobmanager', chain: CHAIN, id: 'jm-ov' },
      { service: 'stratum', chain: CHAIN, id: 'st-ov' },
      { service: 'reporter', chain: CHAIN, id: 'rep-ov' },
    ]);
    for (const target of targets) {
      expect(target.targets).toHaveLength(1);
      const base = `http://${target.targets[0]}`;
      const stats = (await (await fetch(`${base}/stats`)).json()) as { id: string; version: string };
      expect(stats.version).toBe(version);
      const metrics = parseExposition(await (await fetch(`${base}/metrics`)).text());
      const info = metrics.samples.find((s) => s.name === 'hashwire_info')!;
      expect(info.labels).toMatchObject({ ...target.labels, version });
      expect(info.value).toBe(1);
    }

    // The hashrate series: exactly the difficulty of the shares the reporter credited.
    const reporterHttp = `http://${targets.find((t) => t.labels.service === 'reporter')!.targets[0]}`;
    await miners.stop();
    miners = undefined;
    await waitFor(
      async () => {
        const stats = (await (await fetch(`${reporterHttp}/stats`)).json()) as { credited: number };
        const metrics = parseExposition(await (await fetch(`${reporterHttp}/metrics`)).text());
        const counter = metrics.samples.find((s) => s.name === 'hashwire_accepted_difficulty_total')!;
        return stats.credited > 0 && counter.value === stats.credited * DIFF;
      },
      { timeoutMs: 30_000, what: 'hashwire_accepted_difficulty_total = credited shares × difficulty' },
    );
    const stratumMetrics = parseExposition(
      await (
        await fetch(`http://${targets.find((t) => t.labels.service === 'stratum')!.targets[0]}/metrics`)
      ).text(),
    );
    expect(stratumMetrics.samples.find((s) => s.name === 'hashwire_hashes_per_diff')!.value).toBe(65536);
  }, 240_000);

  it('the pool emits its events: services up, each miner worker online once, blocks with their finder', async () => {
    const pool = await streamEvents('pool');
    expect(pool.filter((e) => e.type.endsWith('.up')).map((e) => [e.type, e.data.id])).toEqual([
      ['service.jobmanager.up', 'jm-ov'],
      ['service.reporter.up', 'rep-ov'],
      ['service.stratum.up', 'st-ov'],
    ]);
    const chain = await streamEvents(CHAIN);
    const online = chain.filter((e) => e.type === 'worker.online').map((e) => e.data);
    expect(online.map((d) => String(d.worker).replace(/^[^.]*\./, '')).sort()).toEqual(['w0', 'w1', 'w2']);
    const account = online[0]!.account as string;
    for (const d of online)
      expect(d).toMatchObject({
        chain: CHAIN,
        account,
        worker: expect.stringMatching(`^${account}\\.w[0-2]$`),
      });
    const blocks = chain.filter((e) => e.type.startsWith('block.')).map((e) => e.data);
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks)
      expect(b).toMatchObject({ chain: CHAIN, account, worker: expect.stringMatching(/^w[0-2]$/) });
  });

  it('the jobmanager logs a daemon error when its daemon is stopped', async () => {
    onTestFailed(() => console.error(services.jobmanager.logs()));
    const node = ltc.nodes[0]!;
    await node.stop();
    try {
      await waitFor(() => logged(/^jobmanager: daemon .* failed: /).length > 0, {
        timeoutMs: 60_000,
        what: 'a daemon error in the jobmanager log',
      });
      const line = logged(/^jobmanager: daemon .* failed: /)[0]!;
      expect(line).toMatchObject({ level: 'error', daemon: expect.any(String), err: expect.any(String) });
    } finally {
      await node.start();
      await ltc.connect();
    }
    const daemon = logged(/^jobmanager: daemon .* failed: /)[0]!.daemon;
    await waitFor(() => logged(/^jobmanager: daemon .* answers again$/).some((l) => l.daemon === daemon), {
      timeoutMs: 90_000,
      what: `the jobmanager logging ${String(daemon)} back`,
    });
    // Logged when the error changes while it is down, not at every retry: a daemon starting up
    // may answer "connection refused", then "Loading block index…", then refuse again, but never
    // the same error twice in a row while it stays down. A daemon that answers in between (one
    // shutting down on a loaded machine still answers a call now and then) is logged back, and
    // its next failure is a new one even with the same error.
    const lines = logged(/^jobmanager: daemon .* (failed: |answers again$)/).filter(
      (l) => l.daemon === daemon,
    );
    const repeats = lines.filter((l, i) => i > 0 && l.err !== undefined && l.err === lines[i - 1]!.err);
    expect(repeats, JSON.stringify(lines.map((l) => l.err ?? 'answers again'))).toEqual([]);
  }, 180_000);

  it('a drained jobmanager logs that it gave its lease up, at info', async () => {
    services.jobmanager.child.kill('SIGTERM');
    expect(await services.jobmanager.exited).toEqual({ code: 0, signal: null });
    // The pool stream says it drained and left, once each.
    const jm = (await streamEvents('pool')).filter((e) => e.data.id === 'jm-ov').map((e) => e.type);
    expect(jm).toEqual(['service.jobmanager.up', 'service.jobmanager.draining', 'service.jobmanager.down']);
    expect(logged(/^jobmanager: no longer leader/)).toEqual([
      expect.objectContaining({
        level: 'info',
        reason: 'released',
        msg: 'jobmanager: no longer leader (released)',
      }),
    ]);
  }, 60_000);
});
