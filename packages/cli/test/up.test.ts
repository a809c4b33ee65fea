import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '@hashwire/cli';
import { HaproxyRuntime } from '@hashwire/confgen';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, type ServiceInfo, connectRedis, listServices } from '@hashwire/registry';
import {
  type LitecoinRegtest,
  type RedisServer,
  type SimMiners,
  getFreePort,
  runtimeCommand,
  startLitecoinRegtest,
  startRedis,
  startSimMiners,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../src/supervisor.js';
import { captureOutput } from './capture-output.js';

const CLI_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const PREFIX = `up${process.pid}:`;
const keys = createKeyBuilder({ prefix: PREFIX });
const STRATUM_1 = 'stratum-litecoin-regtest-1';

let redisServer: RedisServer;
let regtest: LitecoinRegtest;
let redis: RedisClient;
let dir: string;

beforeAll(async () => {
  [redisServer, regtest] = await Promise.all([startRedis(), startLitecoinRegtest({ nodes: 2 })]);
  redis = connectRedis(redisServer.url);
  dir = mkdtempSync(join(tmpdir(), 'hw-up-'));
});
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([regtest?.stop(), redisServer?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function liveServices(): Promise<ServiceInfo[]> {
  const kinds = ['jobmanager', 'reporter', 'stratum', 'api'];
  return (await Promise.all(kinds.map((kind) => listServices(redis, keys, kind)))).flat();
}

/** `hashwire up` as an operator runs it: its own process, output collected. */
function runUp(args: string[]): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  let output = '';
  const child = spawn(process.execPath, [CLI_BIN, 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

/**
 * Waits until `count` services are registered and up (failing at once, with up's output, if
 * `hashwire up` exits first); returns them.
 */
async function liveWhenUp(up: ReturnType<typeof runUp>, count: number, what: string): Promise<ServiceInfo[]> {
  return waitFor(
    async () => {
      if (up.child.exitCode !== null) throw new Error(`up exited early:\n${up.output()}`);
      const services = await liveServices();
      return services.length === count && services.every((s) => s.state === 'up') && services;
    },
    { timeoutMs: 60_000, what },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; up's output:\n${up.output()}`);
  });
}

/** After a failed test: `hashwire up` and every process it was seen to start, killed. */
function killLeftovers(up: ReturnType<typeof runUp>, pids: Set<number>): void {
  if (up.child.exitCode !== null) return;
  up.child.kill('SIGKILL');
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
}

describe('hashwire up', () => {
  it('refuses a bad config naming every bad key, and starts nothing', async () => {
    const file = join(dir, 'bad.toml');
    writeFileSync(file, '[stratum]\ncount = -1\nvardif = {}\n[haproxy]\nbind = "nowhere"\n');
    const up = runUp(['--config', file, '--set', 'reporter.count=many']);
    expect(await up.exit).toBe(1);
    const text = up.output();
    expect(text).toContain('the config is not valid, nothing was started');
    for (const path of ['stratum.count', 'stratum.vardif', 'haproxy.bind', 'reporter.count', 'chains']) {
      expect(text).toContain(`${path}:`);
    }
    expect(text).toMatch(/did you mean "vardiff"/);
    expect(await liveServices()).toEqual([]);
  });

  it('exits 1 naming the URL when the configured Redis cannot be reached, and starts nothing', async () => {
    const url = `redis://127.0.0.1:${await getFreePort()}`;
    const payout = await regtest.nodes[0]!.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const file = join(dir, 'no-redis.json');
    writeFileSync(
      file,
      JSON.stringify({
        redis: { url },
        chains: [{ daemons: [{ url: 'http://u:p@127.0.0.1:1/' }], payouts: [{ address: payout }] }],
        haproxy: { statsSocket: join(dir, 'never.sock'), configFile: join(dir, 'never.cfg') },
      }),
    );
    const up = runUp(['--config', file]);
    expect(await up.exit).toBe(1);
    expect(up.output()).toMatch(
      new RegExp(`^hashwire up: cannot reach Redis at ${url}: .*ECONNREFUSED`, 'm'),
    );
    expect(up.output()).not.toMatch(/started \(pid/);
  });

  it('runs HAProxy and every configured service, restarts a drained one, upgrades a stratum server with no miner disconnected, and on SIGTERM stops them all in order', async () => {
    const [node0, node1] = regtest.nodes;
    const payout = await node0!.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const account = await node1!.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const haproxyPort = await getFreePort();
    const apiPort = await getFreePort();
    const socket = join(dir, 'haproxy.sock');
    const file = join(dir, 'pool.json');
    writeFileSync(
      file,
      JSON.stringify({
        redis: { url: redisServer.url, keyPrefix: PREFIX },
        chains: [
          {
            coin: 'litecoin',
            network: 'regtest',
            daemons: regtest.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
            payouts: [{ address: payout }],
          },
        ],
        jobmanager: { count: 1 },
        reporter: { count: 1, blockPollMs: 1000 },
        stratum: {
          count: 2,
          host: '127.0.0.1',
          spoolDir: join(dir, 'spool'),
          vardiff: { enabled: false, initialDifficulty: 2 ** -5 },
          // One miner per wave, a second apart: the drain lasts long enough to be seen.
          drain: { graceMs: 5000, waveIntervalMs: 1000 },
          flushTimeoutMs: 10_000,
        },
        api: { count: 1, bind: `127.0.0.1:${apiPort}` },
        haproxy: {
          bind: `127.0.0.1:${haproxyPort}`,
          statsSocket: socket,
          configFile: join(dir, 'haproxy.cfg'),
          checkIntervalMs: 500,
          rise: 1,
        },
        log: { level: 'info' },
      }),
    );
    const up = runUp(['--config', file, '--set', 'stratum.drain.waveSize=1', '--log-dir', join(dir, 'log')]);
    let miners: SimMiners | undefined;
    const pids = new Set<number>();
    try {
      // Every service registers; HAProxy has both stratum servers in its backend.
      const live = await liveWhenUp(
        up,
        5,
        'jobmanager, reporter, 2 stratum servers and the api in the registry',
      );
      for (const s of live) pids.add(s.pid);
      expect(live.map((s) => s.id).sort()).toEqual([
        'api-1',
        'jobmanager-litecoin-regtest-1',
        'reporter-litecoin-regtest-1',
        STRATUM_1,
        'stratum-litecoin-regtest-2',
      ]);
      await waitFor(() => /pool up: 1 jobmanager, 1 reporter, 2 stratum, 1 api;/.test(up.output()), {
        what: 'the "pool up" line',
      });
      expect(up.output()).toContain(`the API is at http://127.0.0.1:${apiPort}`);
      // The api through HAProxy's HTTP frontend, once its health check passed: it reads the pool.
      await waitFor(
        async () => {
          const stat = await runtimeCommand(socket, 'show stat');
          return /^api,api-1,.*,UP,/m.test(stat);
        },
        { timeoutMs: 20_000, what: 'api-1 UP in HAProxy' },
      );
      const services = (await (await fetch(`http://127.0.0.1:${apiPort}/v1/services`)).json()) as {
        services: { id: string }[];
      };
      expect(services.services.map((s) => s.id)).toContain('stratum-litecoin-regtest-2');
      const haproxyPid = Number(up.output().match(/^haproxy started \(pid (\d+)\)/m)?.[1]);
      expect(pidAlive(haproxyPid)).toBe(true);
      pids.add(haproxyPid);
      await waitFor(
        async () => {
          const stat = await runtimeCommand(socket, 'show stat');
          return (stat.match(/^stratum,stratum-litecoin-regtest-\d,.*,UP,/gm) ?? []).length === 2;
        },
        { timeoutMs: 20_000, what: 'both stratum servers UP in HAProxy' },
      );

      // Two miners through HAProxy, from one address (so on one server), get shares accepted.
      miners = await startSimMiners({
        host: '127.0.0.1',
        port: haproxyPort,
        workers: 2,
        localAddress: '127.0.0.10',
        username: (i) => `${account}.up${i}`,
        algorithm: 'scrypt',
        hashesPerSecondLimit: 1000,
      });
      await waitFor(() => miners!.stats().total.accepted >= 1, {
        timeoutMs: 30_000,
        what: 'an accepted share',
      });

      // `hashwire drain` on their stratum server: the miners move to the other one, it exits 0,
      // and up starts it again.
      const runtime = new HaproxyRuntime({ socketPath: socket });
      const busy = (await runtime.serverStats('stratum')).find((s) => s.sessions === 2);
      expect(busy, 'the server with both miners').toBeDefined();
      const target = busy!.name;
      const before = live.find((s) => s.id === target)!.pid;
      const acceptedBefore = miners.stats().total.accepted;
      const drainOutput = captureOutput({ stderr: false });
      try {
        expect(await main(['drain', target, '--config', file])).toBe(0);
      } finally {
        drainOutput.restore();
      }
      expect(drainOutput.out).toMatch(new RegExp(`^${target}: state draining \\(after [\\d.]+ s\\)$`, 'm'));
      expect(drainOutput.out).toMatch(new RegExp(`^${target}: gone from the registry after [\\d.]+ s$`, 'm'));
      const after = await waitFor(
        async () => {
          const s = (await liveServices()).find((x) => x.id === target);
          return s && s.pid !== before && s.state === 'up' && s;
        },
        { timeoutMs: 30_000, what: `${target} back under a new pid` },
      );
      pids.add(after.pid);
      expect(pidAlive(before)).toBe(false);
      expect(up.output()).toContain(`${target} exited 0 on its own (drained); restarting`);
      // It registers a moment before the supervisor reads its ready line.
      const restarted = new RegExp(`^${target} restarted \\(pid ${after.pid}, restart 1\\)`, 'm');
      await waitFor(() => restarted.test(up.output()), { what: 'the restart line' });
      // The miners went on through HAProxy on the other server.
      await waitFor(() => miners!.stats().total.accepted > acceptedBefore, {
        timeoutMs: 30_000,
        what: 'shares accepted after the drain',
      });
      expect(miners.stats().total.connected).toBe(2);

      // The jobmanager too: POST /drain hands its lease over and exits 0, it comes back, and the
      // miners go on having shares accepted.
      const jm = live.find((s) => s.kind === 'jobmanager')!;
      const quiet = captureOutput({ stderr: false });
      try {
        expect(await main(['drain', jm.id, '--config', file])).toBe(0);
      } finally {
        quiet.restore();
      }
      const jmAfter = await waitFor(
        async () => {
          const s = (await liveServices()).find((x) => x.id === jm.id);
          return s && s.pid !== jm.pid && s;
        },
        { timeoutMs: 30_000, what: `${jm.id} back under a new pid` },
      );
      pids.add(jmAfter.pid);
      expect(pidAlive(jm.pid)).toBe(false);
      const acceptedAfterJm = miners.stats().total.accepted;
      await waitFor(() => miners!.stats().total.accepted > acceptedAfterJm, {
        timeoutMs: 30_000,
        what: 'shares accepted after the jobmanager restart',
      });

      // `hashwire upgrade stratum` on the server the miners are on now: its master (the process
      // up supervises) moves them to a new worker; they stay connected and mine on.
      const disconnects: unknown[] = [];
      miners.on('disconnect', (event) => disconnects.push(event));
      const other = live.find((s) => s.kind === 'stratum' && s.id !== target)!;
      const upgradeOutput = captureOutput({ stderr: false });
      let upgradeCode: number;
      try {
        upgradeCode = await main(['upgrade', 'stratum', other.id, '--config', file, '--json']);
      } finally {
        upgradeOutput.restore();
      }
      expect(upgradeCode, upgradeOutput.out).toBe(0);
      const upgraded = JSON.parse(upgradeOutput.out) as {
        ok: boolean;
        moved: number;
        fromPid: number;
        toPid: number;
      };
      expect(upgraded.ok).toBe(true);
      expect(upgraded.moved).toBeGreaterThanOrEqual(2);
      expect(upgraded.toPid).not.toBe(upgraded.fromPid);
      // The service keeps its pid (the master's) and up restarts nothing.
      const stillThere = (await liveServices()).find((x) => x.id === other.id)!;
      expect(stillThere.pid).toBe(other.pid);
      expect(up.output()).not.toMatch(new RegExp(`^${other.id} (exited|restarted)`, 'm'));
      const acceptedAfterUpgrade = miners.stats().total.accepted;
      await waitFor(() => miners!.stats().total.accepted > acceptedAfterUpgrade, {
        timeoutMs: 30_000,
        what: 'shares accepted after the upgrade',
      });
      expect(disconnects).toEqual([]);
      expect(miners.stats().total.connected).toBe(2);
      await miners.stop();
      miners = undefined;

      up.child.kill('SIGTERM');
      expect(await up.exit).toBe(0);
      const out = up.output();
      const stops = out.split('\n').filter((l) => l.startsWith('stopped '));
      expect(stops.map((l) => l.replace(/ in [\d.]+ s$/, ''))).toEqual([
        `stopped ${STRATUM_1} (exit 0), stratum-litecoin-regtest-2 (exit 0)`,
        'stopped api-1 (exit 0)',
        'stopped reporter-litecoin-regtest-1 (exit 0)',
        'stopped jobmanager-litecoin-regtest-1 (exit 0)',
        'stopped haproxy (exit 0)',
      ]);
      expect(out).toContain('hashwire up: stopped, no process left');
      expect([...pids].filter(pidAlive)).toEqual([]);
      expect(await liveServices()).toEqual([]);
    } finally {
      await miners?.stop();
      killLeftovers(up, pids);
    }
  }, 210_000);

  it("fronts two chains with one HAProxy: each chain's miners reach that chain's stratum server on its own port", async () => {
    const [node0, node1] = regtest.nodes;
    const payout = await node0!.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const account = await node1!.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const [portA, portB] = [await getFreePort(), await getFreePort()];
    const socket = join(dir, 'haproxy-two.sock');
    const file = join(dir, 'pool-two.json');
    // Two chains on the same regtest daemons: what tells them apart is the port a miner picks.
    const chain = (id: string, bind: string) => ({
      id,
      coin: 'litecoin',
      network: 'regtest',
      daemons: regtest.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
      payouts: [{ address: payout }],
      bind,
    });
    writeFileSync(
      file,
      JSON.stringify({
        redis: { url: redisServer.url, keyPrefix: PREFIX },
        chains: [chain('ltc-a', `127.0.0.1:${portA}`), chain('ltc-b', `127.0.0.1:${portB}`)],
        jobmanager: { count: 1 },
        reporter: { count: 1, blockPollMs: 1000 },
        stratum: {
          count: 1,
          host: '127.0.0.1',
          spoolDir: join(dir, 'spool-two'),
          // Every share is a regtest block: one chain's block makes the other's work stale for a
          // moment, which at worst delays that miner's first accepted share.
          vardiff: { enabled: false, initialDifficulty: 2 ** -5 },
        },
        // The api is the first test's; here the chains' own backends.
        api: { count: 0 },
        haproxy: {
          statsSocket: socket,
          configFile: join(dir, 'haproxy-two.cfg'),
          checkIntervalMs: 500,
          rise: 1,
        },
        log: { level: 'info' },
      }),
    );
    const up = runUp(['--config', file, '--log-dir', join(dir, 'log-two')]);
    const miners: SimMiners[] = [];
    const pids = new Set<number>();
    try {
      const live = await liveWhenUp(up, 6, 'a jobmanager, a reporter and a stratum server of each chain');
      for (const s of live) pids.add(s.pid);
      await waitFor(() => /pool up: .*; miners connect to /.test(up.output()), {
        what: 'the "pool up" line',
      });
      expect(up.output()).toContain(
        `miners connect to stratum+tcp://127.0.0.1:${portA} (ltc-a), stratum+tcp://127.0.0.1:${portB} (ltc-b)`,
      );
      expect(up.output()).toContain(
        `haproxy: ltc-b: stratum+tcp on 127.0.0.1:${portB}, backend stratum-ltc-b`,
      );
      const haproxyPid = Number(up.output().match(/^haproxy started \(pid (\d+)\)/m)?.[1]);
      pids.add(haproxyPid);
      // Each chain's server is UP in its own backend, and only there.
      await waitFor(
        async () => {
          const stat = await runtimeCommand(socket, 'show stat');
          return (
            /^stratum,stratum-ltc-a-1,.*,UP,/m.test(stat) &&
            /^stratum-ltc-b,stratum-ltc-b-1,.*,UP,/m.test(stat)
          );
        },
        { timeoutMs: 20_000, what: "each chain's stratum server UP in its chain's backend" },
      );
      const stat = await runtimeCommand(socket, 'show stat');
      expect(stat).not.toMatch(/^stratum,stratum-ltc-b-1,/m);
      expect(stat).not.toMatch(/^stratum-ltc-b,stratum-ltc-a-1,/m);

      for (const [port, tag] of [
        [portA, 'a'],
        [portB, 'b'],
      ] as const) {
        miners.push(
          await startSimMiners({
            host: '127.0.0.1',
            port,
            workers: 1,
            localAddress: '127.0.0.10',
            username: () => `${account}.chain-${tag}`,
            algorithm: 'scrypt',
            hashesPerSecondLimit: 1000,
          }),
        );
      }
      await waitFor(() => miners.every((m) => m.stats().total.accepted >= 1), {
        timeoutMs: 30_000,
        what: 'an accepted share on each chain',
      });
      // Each miner's session is on its chain's stratum server.
      const runtime = new HaproxyRuntime({ socketPath: socket });
      const sessions = async (backend: string) =>
        (await runtime.serverStats(backend)).map((s) => [s.name, s.sessions] as const);
      expect(await sessions('stratum')).toEqual([['stratum-ltc-a-1', 1]]);
      expect(await sessions('stratum-ltc-b')).toEqual([['stratum-ltc-b-1', 1]]);
      // …and that server is the chain's own: it registered for it and holds the session.
      const sessionsAt = async (id: string) => {
        const service = live.find((s) => s.id === id)!;
        const response = await fetch(`${service.http}/stats`);
        return { chain: service.chain, sessions: ((await response.json()) as { sessions: number }).sessions };
      };
      expect(await sessionsAt('stratum-ltc-a-1')).toEqual({ chain: 'ltc-a', sessions: 1 });
      expect(await sessionsAt('stratum-ltc-b-1')).toEqual({ chain: 'ltc-b', sessions: 1 });
      for (const m of miners.splice(0)) await m.stop();

      up.child.kill('SIGTERM');
      expect(await up.exit).toBe(0);
      expect(up.output()).toContain('hashwire up: stopped, no process left');
      expect([...pids].filter(pidAlive)).toEqual([]);
    } finally {
      for (const m of miners) await m.stop();
      killLeftovers(up, pids);
    }
  }, 150_000);
});
