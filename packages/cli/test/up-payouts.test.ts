import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '@hashwire/cli';
import { COMMENT_PREFIX, payoutKeys } from '@hashwire/payouts';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, type ServiceInfo, connectRedis, listServices } from '@hashwire/registry';
import {
  type LitecoinRegtest,
  type RedisServer,
  getFreePort,
  startLitecoinRegtest,
  startRedis,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credit, findBlock, share, startReporter } from '../../payouts/test/helpers.js';
import { pidAlive } from '../src/supervisor.js';
import { type CapturedOutput, captureOutput } from './capture-output.js';

// The payers as `hashwire up` runs them: one process per `payer.count` for each chain with
// payments, each in discovery with its state and whether it pays, with /metrics; one pays at a
// time (the lease), a killed one is restarted and the other takes over without paying twice;
// the api shows what was paid; SIGTERM takes them out of discovery and frees the lease.

const CLI_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const CHAIN = 'ltc';
const PREFIX = `upp${randomBytes(3).toString('hex')}:`;
const keys = createKeyBuilder({ prefix: PREFIX });
const k = payoutKeys(keys, CHAIN);

let ltc: LitecoinRegtest;
let server: RedisServer;
let redis: RedisClient;
let dir: string;

beforeAll(async () => {
  [ltc, server] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
  redis = connectRedis(server.url, 'test');
  dir = mkdtempSync(join(tmpdir(), 'hw-up-payouts-'));
}, 120_000);
afterAll(async () => {
  redis?.disconnect();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await Promise.all([ltc?.stop(), server?.stop()]);
});

/** A block of ours mined to `pool`, credited by a real reporter to miners 3:2, then matured. */
async function matureBlock(pool: string, miners: string[]): Promise<{ hash: string; rewardSat: bigint }> {
  const node = ltc.nodes[0]!;
  const reporter = await startReporter(redis, keys, ltc);
  try {
    await credit(reporter, [share(miners[0]!, 3), share(miners[1]!, 1)]);
    const { hash } = await findBlock(redis, keys, ltc, pool);
    await credit(reporter, [share(miners[1]!, 1, hash)]);
    await reporter.pollBlocks();
    const block = await node.rpc.call<{
      tx: { vout: { value: number; scriptPubKey: { address?: string; addresses?: string[] } }[] }[];
    }>('getblock', [hash, 2]);
    const rewardSat = block.tx[0]!.vout.filter(
      (o) => (o.scriptPubKey.address ?? o.scriptPubKey.addresses?.[0]) === pool,
    ).reduce((sum, o) => sum + BigInt(Math.round(o.value * 1e8)), 0n);
    await ltc.mine(0, 99);
    await ltc.sync();
    return { hash, rewardSat };
  } finally {
    await reporter.close();
  }
}

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const output: CapturedOutput = captureOutput();
  try {
    const code = await main(argv);
    return { code, out: output.out, err: output.err };
  } finally {
    output.restore();
  }
}

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

const payers = () => listServices(redis, keys, 'payouts');
const paying = (s: ServiceInfo) => s.loadFigures?.leader === 1;

/** `name{labels} value` of a Prometheus text page, or undefined. */
async function metric(http: string, name: string, labels = ''): Promise<number | undefined> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && (labels === '' || l.includes(labels)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('hashwire up with payments configured', () => {
  it('runs the payers in discovery with /metrics; one pays at a time, a killed one is replaced without paying twice; the api shows the payment', async () => {
    const node0 = ltc.nodes[0]!;
    const pool = await node0.rpc.call<string>('getnewaddress');
    const miners = [
      await ltc.rpc[1]!.call<string>('getnewaddress'),
      await ltc.rpc[1]!.call<string>('getnewaddress'),
    ];
    const { hash, rewardSat } = await matureBlock(pool, miners);
    const fee = (rewardSat * 100n) / 10_000n;
    const pot = rewardSat - fee;
    const expected = [(pot * 3n) / 5n, (pot * 2n) / 5n];

    const apiPort = await getFreePort();
    const file = join(dir, 'pool.json');
    writeFileSync(
      file,
      JSON.stringify({
        redis: { url: server.url, keyPrefix: PREFIX },
        http: { portRange: [0, 0] },
        chains: [
          {
            id: CHAIN,
            network: 'regtest',
            daemons: [{ url: node0.rpcUrl, cookieFile: node0.cookieFile }],
            payouts: [{ address: pool }],
            // Paid only when asked (pay-now): the test decides when a batch goes.
            payments: {
              scheme: 'prop',
              feePercent: 1,
              minimumPayoutSat: 1000,
              intervalS: 86_400,
              leaseTtlMs: 2000,
            },
          },
        ],
        jobmanager: { count: 0 },
        reporter: { count: 0, blockPollMs: 500 },
        stratum: { count: 0 },
        payer: { count: 2 },
        api: { count: 1, portRange: [apiPort, apiPort] },
        haproxy: { enabled: false },
        log: { level: 'info' },
      }),
    );
    const up = runUp(['--config', file, '--log-dir', join(dir, 'log')]);
    const pids = new Set<number>();
    try {
      const both = await waitFor(
        async () => {
          if (up.child.exitCode !== null) throw new Error(`up exited early:\n${up.output()}`);
          const live = await payers();
          return live.length === 2 && live.filter(paying).length === 1 && live;
        },
        { timeoutMs: 60_000, what: 'two payers in discovery, one of them paying' },
      );
      for (const s of both) pids.add(s.pid);
      expect(both.map((s) => [s.id, s.chain, s.state]).sort()).toEqual([
        [`payouts-${CHAIN}-1`, CHAIN, 'up'],
        [`payouts-${CHAIN}-2`, CHAIN, 'up'],
      ]);
      await waitFor(
        () => /pool up: 0 jobmanager, 0 reporter, 0 stratum, 1 api, 2 payers \(payouts\);/.test(up.output()),
        {
          what: 'the "pool up" line',
        },
      );
      const leader = both.find(paying)!;
      const standby = both.find((s) => !paying(s))!;

      // No batch yet: the paying one's first run shares the matured block out and pays it, once,
      // into the miners' wallet to the satoshi.
      const batch = await waitFor(
        async () => {
          const [id] = await redis.zrange(k.batchIndex, 0, -1);
          const text = id ? await redis.hget(k.batches, id) : null;
          const b = text ? (JSON.parse(text) as { state: string; txid?: string; totalSat: string }) : null;
          return b?.state === 'sent' && b;
        },
        { timeoutMs: 60_000, what: 'the first batch sent' },
      );
      const txid = batch.txid!;
      expect(BigInt(batch.totalSat)).toBe(expected[0]! + expected[1]!);
      await ltc.mine(0, 1);
      await ltc.sync();
      for (const [i, miner] of miners.entries()) {
        const received = await ltc.rpc[1]!.call<number>('getreceivedbyaddress', [miner, 1]);
        expect(BigInt(Math.round(received * 1e8)), miner).toBe(expected[i]);
      }
      // What its /metrics says: it leads, it sent one batch of that much, nothing is owed now.
      expect(await metric(leader.http, 'hashwire_leader')).toBe(1);
      expect(await metric(standby.http, 'hashwire_leader')).toBe(0);
      expect(await metric(leader.http, 'hashwire_payout_runs_total', 'outcome="sent"')).toBe(1);
      expect(await metric(leader.http, 'hashwire_payout_paid_sat_total')).toBe(Number(batch.totalSat));
      expect(await metric(leader.http, 'hashwire_payout_last_run_timestamp_seconds')).toBeGreaterThan(0);
      await waitFor(async () => (await metric(leader.http, 'hashwire_payout_owed_sat')) === 0, {
        what: 'nothing owed on /metrics after the payment',
      });
      expect(await metric(standby.http, 'hashwire_payout_runs_total', 'outcome="sent"')).toBe(0);
      expect(await metric(standby.http, 'hashwire_payout_last_run_timestamp_seconds')).toBe(0);
      const standbyStats = (await (await fetch(`${standby.http}/stats`)).json()) as {
        runs: number;
        leader: boolean;
      };
      expect(standbyStats).toMatchObject({ runs: 0, leader: false });

      // status and the api's /v1/services show both, and which one pays.
      const status = await run(['status', '--config', file]);
      expect(status.code).toBe(0);
      expect(status.out).toMatch(
        new RegExp(`^payouts\\s+${leader.id}\\s+${CHAIN}\\s.*\\sup\\s+paying\\s`, 'm'),
      );
      expect(status.out).toMatch(
        new RegExp(`^payouts\\s+${standby.id}\\s+${CHAIN}\\s.*\\sup\\s+standby\\s`, 'm'),
      );
      const api = `http://127.0.0.1:${apiPort}`;
      const services = (await (await fetch(`${api}/v1/services`)).json()) as { services: ServiceInfo[] };
      expect(
        services.services
          .filter((s) => s.kind === 'payouts')
          .map((s) => [s.id, s.state, s.loadFigures?.leader])
          .sort(),
      ).toEqual(
        [
          [leader.id, 'up', 1],
          [standby.id, 'up', 0],
        ].sort(),
      );

      // The api: the miner's balance, its payment with the txid, its earnings of the block.
      const balance = await (await fetch(`${api}/v1/chains/${CHAIN}/accounts/${miners[0]}/balance`)).json();
      expect(balance).toMatchObject({ balanceSat: '0', paidSat: String(expected[0]), payingSat: '0' });
      const payments = await (await fetch(`${api}/v1/chains/${CHAIN}/accounts/${miners[0]}/payments`)).json();
      expect(payments.items).toEqual([expect.objectContaining({ txid, sat: String(expected[0]) })]);
      const earnings = await (await fetch(`${api}/v1/chains/${CHAIN}/accounts/${miners[1]}/earnings`)).json();
      expect(earnings.items).toEqual([
        expect.objectContaining({ blockHash: hash, type: 'credit', sat: String(expected[1]) }),
      ]);

      // SIGKILL the paying one: up restarts it, and one of the two takes the lease once it has
      // run out: the standby, or the restarted one if it is up first (either is right).
      process.kill(leader.pid, 'SIGKILL');
      const after = await waitFor(
        async () => {
          const live = await payers();
          const restarted = live.find((s) => s.id === leader.id);
          return (
            live.length === 2 &&
            restarted !== undefined &&
            restarted.pid !== leader.pid &&
            live.filter(paying).length === 1 &&
            live
          );
        },
        { timeoutMs: 60_000, what: `${leader.id} restarted and one of the two payers paying` },
      );
      for (const s of after) pids.add(s.pid);
      const payingNow = after.find(paying)!;
      // Nothing is due: asked again, the new payer pays nobody; the wallet holds one payment.
      const again = await run(['payouts', 'pay-now', '--config', file]);
      expect(again.code, again.err).toBe(0);
      expect(again.out).toMatch(new RegExp(`^asked payer ${payingNow.id}: no new batch`));
      const sends = (
        await node0.rpc.call<{ category: string; comment?: string; txid: string }[]>('listtransactions', [
          '*',
          1000,
          0,
          true,
        ])
      ).filter((t) => t.category === 'send' && t.comment?.startsWith(COMMENT_PREFIX));
      expect(new Set(sends.map((t) => t.txid))).toEqual(new Set([txid]));
      const audit = await run(['payouts', 'audit', '--config', file]);
      expect(audit.code, audit.out).toBe(0);

      // SIGTERM: the payers leave discovery and give the lease up.
      up.child.kill('SIGTERM');
      expect(await up.exit).toBe(0);
      const stops = up
        .output()
        .split('\n')
        .filter((l) => l.startsWith('stopped '))
        .map((l) => l.replace(/ in [\d.]+ s$/, ''));
      expect(stops).toEqual([
        'stopped api-1 (exit 0)',
        `stopped payouts-${CHAIN}-1 (exit 0), payouts-${CHAIN}-2 (exit 0)`,
      ]);
      expect(up.output()).toContain('hashwire up: stopped, no process left');
      expect(await payers()).toEqual([]);
      expect(await redis.get(k.lease)).toBeNull();
      expect([...pids].filter(pidAlive)).toEqual([]);
    } finally {
      if (up.child.exitCode === null) {
        up.child.kill('SIGKILL');
        for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
      }
    }
  }, 240_000);
});
