import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DaemonClient } from '@hashwire/chain';
import {
  type LitecoinRegtest,
  type RpcCounter,
  startLitecoinRegtest,
  startRedis,
  startRpcCounter,
} from '@hashwire/testkit';
import { within } from '../measure.js';
import type { BenchResult, BenchSuite } from '../types.js';

const CHAIN = 'litecoin-regtest';
const require = createRequire(import.meta.url);

/** The built bin of a service package. */
function binOf(pkg: string): string {
  return require.resolve(pkg).replace(/index\.js$/, 'bin.js');
}

/**
 * CPU time of a process in ns, every thread included (`/proc/<pid>/task/<tid>/schedstat`,
 * nanosecond resolution where `/proc/<pid>/stat` has 10 ms ticks).
 */
export function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return total;
}

interface Running {
  name: string;
  child: ChildProcess;
}

/**
 * A pool at rest, right after its coin daemons restarted: two jobmanagers (leader and standby),
 * one stratum server, one reporter, as processes with the production defaults (500 ms tip poll,
 * 1 s heartbeats), no miners. It counts each jobmanager's daemon RPC calls through a counting
 * proxy (`jobs.idle_daemon_calls_per_s`; the same-run baseline is the pre-issue-15 long poll
 * loop, asking again at once, against the same daemon for one second) and samples every
 * process's CPU time (`pool.idle_cpu_pct`; the baseline is an idle Node.js process with one
 * timer). A freshly restarted litecoind answers a long poll at once until its first new block:
 * the case that made jobmanagers spin.
 */
export const idleSuite: BenchSuite = {
  name: 'idle',
  description: 'a pool at rest after a daemon restart: daemon calls and CPU of each service',
  async run(ctx) {
    if (process.platform !== 'linux') throw new Error('bench idle: reads /proc, Linux only');
    const windowMs = ctx.quick ? 3000 : 20_000;
    const [ltc, redisServer] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
    const children: Running[] = [];
    const counters: RpcCounter[][] = [];
    const spoolDir = mkdtempSync(join(tmpdir(), 'hw-bench-idle-'));
    const spawnReady = async (name: string, bin: string, env: Record<string, string>) => {
      const child = spawn(process.execPath, [bin], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      children.push({ name, child });
      await within(once(createInterface({ input: child.stdout! }), 'line'), 60_000, `${name} ready line`);
      return child;
    };
    try {
      ctx.log('idle: restarting the daemons');
      await Promise.all(ltc.nodes.map((n) => n.restart()));
      await ltc.connect();
      const baselineCalls = await naiveLongpollCallsPerS(ltc);
      const payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
      const prefix = `b${randomBytes(4).toString('hex')}:`;
      const common = { redisUrl: redisServer.url, keyPrefix: prefix, logLevel: 'warn' };
      for (const id of ['jm-1', 'jm-2']) {
        const mine = await Promise.all(ltc.nodes.map((n) => startRpcCounter({ port: n.rpcPort })));
        counters.push(mine);
        const config = {
          ...common,
          id,
          coin: 'litecoin',
          network: 'regtest',
          daemons: ltc.nodes.map((n, i) => ({ url: mine[i]!.url, cookieFile: n.cookieFile })),
          payouts: [{ address: payout }],
        };
        await spawnReady(id, binOf('@hashwire/jobmanager'), {
          HASHWIRE_JOBMANAGER_CONFIG: JSON.stringify(config),
        });
      }
      await spawnReady('reporter', binOf('@hashwire/reporter'), {
        HASHWIRE_REPORTER_CONFIG: JSON.stringify({
          ...common,
          id: 'rp-1',
          chain: CHAIN,
          daemons: ltc.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
        }),
      });
      await spawnReady('stratum', binOf('@hashwire/stratum'), {
        HASHWIRE_STRATUM_CONFIG: JSON.stringify({
          ...common,
          id: 'st-1',
          chain: CHAIN,
          coin: 'litecoin',
          network: 'regtest',
          spoolDir,
          host: '127.0.0.1',
          port: 0,
        }),
      });
      const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      children.push({ name: 'bare node', child: bare });
      // Let start-up work (module loading, first template, first election) settle.
      await new Promise((resolve) => setTimeout(resolve, ctx.quick ? 1000 : 5000));

      ctx.log(`idle: measuring for ${windowMs / 1000} s`);
      for (const c of counters.flat()) c.reset();
      const daemonPids = ltc.nodes.map((n) => n.pid as number);
      const before = new Map(children.map((r) => [r.name, cpuNs(r.child.pid as number)]));
      const daemonBefore = daemonPids.map(cpuNs);
      const from = performance.now();
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      const seconds = (performance.now() - from) / 1000;
      const pct = (ns: number) => Number(((ns / 1e9 / seconds) * 100).toFixed(2));
      const cpu = new Map(
        children.map((r) => [r.name, pct(cpuNs(r.child.pid as number) - (before.get(r.name) as number))]),
      );
      const daemonCpu = daemonPids.map((pid, i) => pct(cpuNs(pid) - (daemonBefore[i] as number)));
      const calls = counters.map((mine) => mine.reduce((sum, c) => sum + c.total(), 0) / seconds);
      const gbt = counters.map(
        (mine) => mine.reduce((sum, c) => sum + (c.counts().getblocktemplate ?? 0), 0) / seconds,
      );
      const worstCalls = Math.max(...calls);
      const services = ['jm-1', 'jm-2', 'stratum', 'reporter'];
      const worstService = services.reduce((a, b) => ((cpu.get(b) ?? 0) > (cpu.get(a) ?? 0) ? b : a));
      const worstCpu = cpu.get(worstService) as number;
      const bareBaseline = {
        name: 'an idle Node.js process (one 1 s timer)',
        value: cpu.get('bare node') ?? 0,
      };
      const round = (v: number) => Number(v.toFixed(2));
      const results: BenchResult[] = [
        {
          name: 'jobs.idle_daemon_calls_per_s',
          value: round(worstCalls),
          unit: `calls/s per jobmanager, the busier of 2 (${calls.map(round).join(' and ')}; getblocktemplate ${gbt.map(round).join(' and ')}), right after a daemon restart`,
          higherIsBetter: false,
          baseline: {
            name: 'GBT long poll asked again at once (before issue 15)',
            value: round(baselineCalls),
          },
          target: '<= 3',
          met: worstCalls <= 3,
        },
        {
          name: 'pool.idle_cpu_pct',
          value: worstCpu,
          unit: `% of a core, the busiest service at rest (${services.map((s) => `${s} ${cpu.get(s)}`).join(', ')})`,
          higherIsBetter: false,
          baseline: bareBaseline,
          target: '<= 2 %',
          met: worstCpu <= 2,
        },
        {
          name: 'pool.idle_daemon_cpu_pct',
          value: Math.max(...daemonCpu),
          unit: `% of a core, the busier litecoind (${daemonCpu.join(' and ')}) serving the idle pool`,
          higherIsBetter: false,
          baseline: null,
        },
      ];
      return results;
    } finally {
      for (const r of children) r.child.kill('SIGKILL');
      await Promise.all(
        children.map((r) =>
          r.child.exitCode === null && r.child.signalCode === null ? once(r.child, 'exit') : undefined,
        ),
      );
      for (const c of counters.flat()) await c.close();
      await Promise.all([ltc.stop(), redisServer.stop()]);
      rmSync(spoolDir, { recursive: true, force: true });
    }
  },
};

/**
 * What the long poll loop did before issue 15 against a freshly restarted daemon: ask again as
 * soon as the answer comes. Runs for one second; returns its calls per second.
 */
async function naiveLongpollCallsPerS(ltc: LitecoinRegtest): Promise<number> {
  const node = ltc.nodes[0]!;
  const client = new DaemonClient({ url: node.rpcUrl, cookieFile: node.cookieFile, longpollTimeoutMs: 2000 });
  try {
    let template = await client.getBlockTemplate({ rules: ['mweb', 'segwit'] });
    let calls = 1;
    const from = performance.now();
    while (performance.now() - from < 1000) {
      template = await client.getBlockTemplate({
        rules: ['mweb', 'segwit'],
        longpollId: template.longpollid as string,
      });
      calls++;
    }
    return calls / ((performance.now() - from) / 1000);
  } finally {
    client.close();
  }
}
