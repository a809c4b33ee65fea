import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { getChainParams, stratumPrevhashFromDisplay } from '@hashwire/chain';
import { type Job, createKeyBuilder } from '@hashwire/protocol';
import { connectRedis } from '@hashwire/registry';
import { JobFeed, createStratumServer } from '@hashwire/stratum';
import { startLitecoinRegtest, startRedis, waitFor } from '@hashwire/testkit';
import { percentile } from '../measure.js';
import type { BenchSuite } from '../types.js';

const CHAIN = 'litecoin-regtest';

/**
 * The job path around leadership changes, with jobmanagers as real processes and a stratum
 * server's JobFeed as the receiver: SIGKILL of the leader → first job of the new epoch
 * (`jobs.failover_gap_ms`, default 2 s lease), planned handover (SIGTERM → drain) → first job
 * of the new epoch (`jobs.handover_gap_ms`), and as the same-run reference the normal path,
 * a block mined on the other litecoind node → its job at the feed.
 */
export const jobsSuite: BenchSuite = {
  name: 'jobs',
  description: 'job path: new block, leader failover and planned handover',
  async run(ctx) {
    const rounds = ctx.quick ? 1 : 5;
    const bin = createRequire(import.meta.url)
      .resolve('@hashwire/jobmanager')
      .replace(/index\.js$/, 'bin.js');
    const [ltc, redisServer] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
    const redis = connectRedis(redisServer.url, 'bench');
    const children = new Set<ChildProcess>();
    const payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
    const failover: number[] = [];
    const handover: number[] = [];
    const blockToJob: number[] = [];
    const blockToNotify: number[] = [];
    const spawnJobmanager = async (prefix: string, id: string) => {
      const config = {
        id,
        coin: 'litecoin',
        network: 'regtest',
        daemons: ltc.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
        payouts: [{ address: payout }],
        redisUrl: redisServer.url,
        keyPrefix: prefix,
        heartbeatIntervalMs: 250,
      };
      const child = spawn(process.execPath, [bin], {
        env: { ...process.env, HASHWIRE_JOBMANAGER_CONFIG: JSON.stringify(config) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.add(child);
      await once(createInterface({ input: child.stdout! }), 'line');
      return child;
    };
    try {
      for (let round = 0; round < rounds; round++) {
        ctx.log(`jobs: round ${round + 1}/${rounds}`);
        const prefix = `b${randomBytes(4).toString('hex')}:`;
        const spawnJm = (id: string) => spawnJobmanager(prefix, id);
        const feed = new JobFeed({
          redis,
          keys: createKeyBuilder({ prefix }),
          chain: CHAIN,
          stratumId: 'bench',
          heartbeatIntervalMs: 250,
          reconcileMs: 250,
        });
        const jobs: { job: Job; at: number }[] = [];
        feed.onJob((job) => jobs.push({ job, at: performance.now() }));
        await feed.start();
        const firstJobAfter = (from: number, match: (j: Job) => boolean) =>
          waitFor(() => jobs.find((j) => j.at >= from && match(j.job)), {
            timeoutMs: 20_000,
            intervalMs: 5,
            what: 'a job',
          });

        const a = await spawnJm('jm-a');
        await firstJobAfter(0, (j) => j.jmId === 'jm-a');
        const b = await spawnJm('jm-b');
        await waitFor(() => feed.connected().length === 2, { timeoutMs: 10_000, what: 'both jobmanagers' });

        // Reference: a new block on the other node reaches the feed as a clean job.
        let start = performance.now();
        await ltc.mine(1, 1);
        const fresh = await firstJobAfter(start, (j) => j.cleanJobs);
        blockToJob.push(fresh.at - start);

        const epochA = jobs.filter((j) => j.job.jmId === 'jm-a').at(-1)!.job.epoch;
        start = performance.now();
        a.kill('SIGKILL');
        const taken = await firstJobAfter(start, (j) => j.epoch > epochA);
        failover.push(taken.at - start);

        const c = await spawnJm('jm-c');
        await waitFor(() => feed.connected().includes('jm-c'), {
          timeoutMs: 10_000,
          what: 'the new standby',
        });
        start = performance.now();
        b.kill('SIGTERM'); // drains: hands the lease to jm-c
        const handed = await firstJobAfter(start, (j) => j.epoch > taken.job.epoch);
        handover.push(handed.at - start);

        await feed.close();
        for (const child of [b, c]) child.kill('SIGKILL');
      }
      ctx.log(`jobs: block → notify at ${SESSIONS} sessions`);
      blockToNotify.push(
        ...(await blockToNotifyRounds(ltc, redisServer.url, spawnJobmanager, ctx.quick ? 2 : 10)),
      );
    } finally {
      for (const child of children) child.kill('SIGKILL');
      redis.disconnect();
      await Promise.all([ltc.stop(), redisServer.stop()]);
    }
    const ms = (v: number) => Number(v.toFixed(1));
    const blockRef = { name: 'new block → job at the feed, p99', value: ms(percentile(blockToJob, 99)) };
    return [
      {
        name: 'jobs.block_to_notify_p99_ms',
        value: ms(percentile(blockToNotify, 99)),
        unit: `ms (${SESSIONS} sessions, ${blockToNotify.length} blocks)`,
        higherIsBetter: false,
        baseline: blockRef,
        target: '< 50 ms',
        met: percentile(blockToNotify, 99) < 50,
      },
      {
        name: 'jobs.failover_gap_ms',
        value: ms(percentile(failover, 99)),
        unit: `ms (max of ${rounds})`,
        higherIsBetter: false,
        baseline: blockRef,
        target: '< 3000 ms',
        met: percentile(failover, 99) < 3000,
      },
      {
        name: 'jobs.handover_gap_ms',
        value: ms(percentile(handover, 99)),
        unit: `ms (max of ${rounds})`,
        higherIsBetter: false,
        baseline: blockRef,
        target: '< 200 ms',
        met: percentile(handover, 99) < 200,
      },
    ];
  },
};

const SESSIONS = 1000;

/**
 * A block mined on the other litecoind node → the last of SESSIONS stratum sessions holding
 * the new clean `mining.notify`: daemon long poll → jobmanager → push → stratum server →
 * every socket. Sessions are bare sockets that subscribe and authorize, in this process.
 */
async function blockToNotifyRounds(
  ltc: Awaited<ReturnType<typeof startLitecoinRegtest>>,
  redisUrl: string,
  spawnJobmanager: (prefix: string, id: string) => Promise<ChildProcess>,
  rounds: number,
): Promise<number[]> {
  const prefix = `b${randomBytes(4).toString('hex')}:`;
  const keys = createKeyBuilder({ prefix });
  const redis = connectRedis(redisUrl, 'bench-notify');
  const jm = await spawnJobmanager(prefix, 'jm-notify');
  const feed = new JobFeed({ redis, keys, chain: CHAIN, stratumId: 'bench', heartbeatIntervalMs: 250 });
  await feed.start();
  const spoolDir = mkdtempSync(join(tmpdir(), 'hw-bench-spool-'));
  const server = await createStratumServer({
    id: 'bench-stratum',
    chain: CHAIN,
    params: getChainParams('litecoin', 'regtest'),
    host: '127.0.0.1',
    port: 0,
    redis,
    keys,
    jobs: feed,
    blockSink: feed,
    spoolDir,
    limits: { maxConnectionsPerIp: SESSIONS + 10 },
    vardiff: { enabled: false },
  });
  const sockets: ReturnType<typeof connect>[] = [];
  const results: number[] = [];
  try {
    await waitFor(() => feed.current(), { timeoutMs: 15_000, what: 'a first job' });
    await server.start();
    const address = await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'bech32']);
    // Per session: notify lines seen while a round runs (the block hash, hence the new
    // prevhash, is known only once generatetoaddress returns; lines may come first).
    const seen: { at: number; line: string }[][] = [];
    const last: number[] = [];
    let target: string | null = null;
    let watching = false;
    let arrived = 0;
    let ready = 0;
    let resolveRound: (() => void) | null = null;
    const mark = (i: number, at: number) => {
      last[i] = at;
      if (++arrived === SESSIONS) resolveRound?.();
    };
    for (let i = 0; i < SESSIONS; i++) {
      const socket = connect(server.port, '127.0.0.1');
      sockets.push(socket);
      seen.push([]);
      last.push(-1);
      let partial = '';
      let authorized = false;
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        const at = performance.now();
        partial += chunk;
        let nl = partial.indexOf('\n');
        while (nl !== -1) {
          const line = partial.slice(0, nl);
          partial = partial.slice(nl + 1);
          if (!authorized && line.includes('"id":2')) {
            authorized = true;
            ready++;
          } else if (watching && last[i] === -1 && line.includes('mining.notify')) {
            if (target === null) seen[i]!.push({ at, line });
            else if (line.includes(target)) mark(i, at);
          }
          nl = partial.indexOf('\n');
        }
      });
      socket.write(
        `{"id":1,"method":"mining.subscribe","params":["bench"]}\n{"id":2,"method":"mining.authorize","params":["${address}.b${i}","x"]}\n`,
      );
    }
    await waitFor(() => ready === SESSIONS, { timeoutMs: 60_000, what: `${SESSIONS} authorized sessions` });
    for (let round = 0; round < rounds; round++) {
      arrived = 0;
      target = null;
      for (let i = 0; i < SESSIONS; i++) {
        seen[i] = [];
        last[i] = -1;
      }
      const done = new Promise<void>((resolve) => {
        resolveRound = resolve;
      });
      watching = true;
      const start = performance.now();
      const [hash] = await ltc.mine(1, 1);
      target = stratumPrevhashFromDisplay(hash!);
      for (let i = 0; i < SESSIONS; i++) {
        const hit = seen[i]!.find((n) => n.line.includes(target!));
        if (hit && last[i] === -1) mark(i, hit.at);
      }
      await done;
      watching = false;
      results.push(Math.max(...last) - start);
      await ltc.sync();
    }
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
    await feed.close();
    jm.kill('SIGKILL');
    redis.disconnect();
    rmSync(spoolDir, { recursive: true, force: true });
  }
  return results;
}
