import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis, listServices } from '@hashwire/registry';
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
import { type RunningCircus, parseCircusIni, runCircusIni } from './circus-run.js';

// The rendered circus.ini is real: every watcher it names (HAProxy, the follower, jobmanager,
// reporter, stratum servers) started exactly as circusd starts it (circus-run.ts: circusd itself
// is not installable on this machine), and the stratum servers join HAProxy through the
// follower alone: haproxy.cfg is rendered with no server in it.

const CLI_BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const PREFIX = `circus${process.pid}:`;
const keys = createKeyBuilder({ prefix: PREFIX });

let redisServer: RedisServer;
let regtest: LitecoinRegtest;
let redis: RedisClient;
let dir: string;

beforeAll(async () => {
  [redisServer, regtest] = await Promise.all([startRedis(), startLitecoinRegtest({ nodes: 2 })]);
  redis = connectRedis(redisServer.url);
  dir = mkdtempSync(join(tmpdir(), 'hw-circus-'));
});
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([regtest?.stop(), redisServer?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_BIN, ...args], (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

describe('the rendered circus.ini', () => {
  it('runs HAProxy, the follower and every service; the stratum servers join HAProxy, miners get shares accepted, and a stratum server is upgraded with its miner connected', async () => {
    const [node0, node1] = regtest.nodes;
    const payout = await node0!.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const account = await node1!.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const haproxyPort = await getFreePort();
    const apiPort = await getFreePort();
    const socket = join(dir, 'haproxy.sock');
    const haproxyCfg = join(dir, 'haproxy.cfg');
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
          drain: { graceMs: 2000, waveIntervalMs: 100 },
          flushTimeoutMs: 10_000,
        },
        api: { count: 1, bind: `127.0.0.1:${apiPort}` },
        haproxy: {
          bind: `127.0.0.1:${haproxyPort}`,
          statsSocket: socket,
          configFile: haproxyCfg,
          checkIntervalMs: 500,
          rise: 1,
        },
        circus: { workingDir: dir, logDir: join(dir, 'log') },
        http: { adminTokenFile: join(dir, 'admin.token') },
        log: { level: 'info' },
      }),
    );
    // What an operator does: HAProxy's file (no servers: the follower brings them), then circus.ini.
    const haproxy = await cli(['render', 'haproxy', '--config', file, '--offline', '--out', haproxyCfg]);
    expect(haproxy.code, haproxy.output).toBe(0);
    expect(readFileSync(haproxyCfg, 'utf8')).not.toMatch(/^\s*server /m);
    const iniFile = join(dir, 'circus.ini');
    const render = await cli(['render', 'circus', '--config', file, '--out', iniFile]);
    expect(render.code, render.output).toBe(0);
    const ini = parseCircusIni(readFileSync(iniFile, 'utf8'));
    expect(ini.watchers.map((w) => [w.name, w.options.priority, w.options.stop_signal])).toEqual([
      ['haproxy', '50', 'SIGUSR1'],
      ['follow-haproxy', '40', 'SIGTERM'],
      ['jobmanager', '30', 'SIGTERM'],
      ['stratum', '10', 'SIGTERM'],
      ['reporter', '20', 'SIGTERM'],
      ['api', '5', 'SIGTERM'],
    ]);

    let circus: RunningCircus | undefined;
    let miners: SimMiners | undefined;
    const logs = () =>
      ['follow-haproxy', 'stratum', 'haproxy']
        .map((name) => {
          try {
            return `--- ${name} ---\n${readFileSync(join(dir, 'log', `${name}.out.log`), 'utf8').slice(-3000)}${readFileSync(join(dir, 'log', `${name}.err.log`), 'utf8').slice(-3000)}`;
          } catch {
            return `--- ${name}: no log ---`;
          }
        })
        .join('\n');
    try {
      circus = runCircusIni(ini);
      expect(circus.argv.get('stratum/2')).toEqual([
        process.execPath,
        CLI_BIN,
        'run',
        'stratum',
        '--config',
        file,
        '--instance',
        '2',
      ]);
      await waitFor(
        async () => {
          const stat = await runtimeCommand(socket, 'show stat').catch(() => '');
          return (stat.match(/^stratum,stratum-litecoin-regtest-\d,.*,UP,/gm) ?? []).length === 2;
        },
        { timeoutMs: 90_000, what: 'both stratum servers UP in HAProxy, added by the follower' },
      ).catch((error: Error) => {
        throw new Error(`${error.message}\n${logs()}`);
      });
      expect(readFileSync(join(dir, 'log', 'follow-haproxy.out.log'), 'utf8')).toMatch(
        /add server stratum\/stratum-litecoin-regtest-1 /,
      );
      // The api instance joins HAProxy's api backend too, and answers through its frontend.
      await waitFor(
        async () => /^api,api-1,.*,UP,/m.test(await runtimeCommand(socket, 'show stat').catch(() => '')),
        { timeoutMs: 60_000, what: 'api-1 UP in HAProxy, added by the follower' },
      ).catch((error: Error) => {
        throw new Error(`${error.message}\n${logs()}`);
      });
      const pool = (await (await fetch(`http://127.0.0.1:${apiPort}/v1/pool`)).json()) as {
        chains: { chain: string }[];
      };
      expect(pool.chains.map((c) => c.chain)).toEqual(['litecoin-regtest']);
      const live = await listServices(redis, keys, 'stratum');
      expect(live.map((s) => s.id).sort()).toEqual([
        'stratum-litecoin-regtest-1',
        'stratum-litecoin-regtest-2',
      ]);

      // A miner through HAProxy gets a share accepted: the whole chain of watchers works.
      miners = await startSimMiners({
        host: '127.0.0.1',
        port: haproxyPort,
        workers: 1,
        username: () => `${account}.circus`,
        algorithm: 'scrypt',
        hashesPerSecondLimit: 1000,
      });
      await waitFor(() => miners!.stats().total.accepted > 0, {
        timeoutMs: 60_000,
        what: 'an accepted share',
      });

      // `hashwire upgrade stratum` on the server the miner is on: the watcher's process (the
      // stratum master) stays, its miner stays connected and mines on.
      const disconnects: unknown[] = [];
      miners.on('disconnect', (event) => disconnects.push(event));
      const sessionsOf = async (http: string) =>
        ((await (await fetch(`${http}/stats`)).json()) as { sessions: number }).sessions;
      let minersServer: (typeof live)[number] | undefined;
      for (const s of live) if ((await sessionsOf(s.http)) > 0) minersServer = s;
      expect(minersServer, 'the stratum server with the miner').toBeDefined();
      const watcherPids = circus!.processes.filter((p) => p.watcher === 'stratum').map((p) => p.child.pid);
      const upgrade = await cli(['upgrade', 'stratum', minersServer!.id, '--config', file, '--json']);
      expect(upgrade.code, upgrade.output).toBe(0);
      const upgraded = JSON.parse(upgrade.output) as { ok: boolean; moved: number };
      expect(upgraded.ok).toBe(true);
      expect(upgraded.moved).toBeGreaterThanOrEqual(1);
      expect(circus!.processes.filter((p) => p.watcher === 'stratum').map((p) => p.child.pid)).toEqual(
        watcherPids,
      );
      const acceptedBefore = miners.stats().total.accepted;
      await waitFor(() => miners!.stats().total.accepted > acceptedBefore, {
        timeoutMs: 60_000,
        what: 'a share accepted after the upgrade',
      });
      expect(disconnects).toEqual([]);
      await miners.stop();
      miners = undefined;

      // Stopped in the documented order (stratum first, as `circusctl stop stratum` then `quit`),
      // each with its stop_signal: all exit on their own.
      const exits = await circus.stop();
      circus = undefined;
      expect(exits.filter((e) => e.signal === 'SIGKILL')).toEqual([]);
      expect(exits.map((e) => [e.watcher, e.code]).sort()).toEqual(
        [
          ['api', 0],
          ['follow-haproxy', 0],
          ['haproxy', 0],
          ['jobmanager', 0],
          ['reporter', 0],
          ['stratum', 0],
          ['stratum', 0],
        ].sort(),
      );
    } finally {
      await miners?.stop();
      if (circus) {
        console.error(logs());
        await circus.stop();
      }
    }
  }, 240_000);
});
