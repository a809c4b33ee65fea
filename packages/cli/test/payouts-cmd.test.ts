import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '@hashwire/cli';
import { createLogger } from '@hashwire/core';
import { createPayer, payoutKeys, resolvePaymentSettings } from '@hashwire/payouts';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import {
  type LitecoinRegtest,
  type RedisServer,
  startLitecoinRegtest,
  startRedis,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credit, findBlock, share, startReporter } from '../../payouts/test/helpers.js';
import { type CapturedOutput, captureOutput } from './capture-output.js';

let ltc: LitecoinRegtest;
let server: RedisServer;
let redis: RedisClient;
let dir: string;

beforeAll(async () => {
  [ltc, server] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
  redis = connectRedis(server.url, 'test');
  dir = mkdtempSync(join(tmpdir(), 'hw-payouts-cmd-'));
}, 120_000);
afterAll(async () => {
  redis?.disconnect();
  rmSync(dir, { recursive: true, force: true });
  await Promise.all([ltc?.stop(), server?.stop()]);
});

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const output: CapturedOutput = captureOutput();
  try {
    const code = await main(argv);
    return { code, out: output.out, err: output.err };
  } finally {
    output.restore();
  }
}

describe('hashwire payouts', () => {
  it('pay-now shares out the matured block and pays it; audit proves the books and fails when they do not add up; status shows it', async () => {
    const prefix = `pc${randomBytes(3).toString('hex')}:`;
    const keys = createKeyBuilder({ prefix });
    const k = payoutKeys(keys, 'ltc');
    const node = ltc.nodes[0]!;
    const pool = await node.rpc.call<string>('getnewaddress');
    const miners = [
      await ltc.rpc[1]!.call<string>('getnewaddress'),
      await ltc.rpc[1]!.call<string>('getnewaddress'),
    ];
    const file = join(dir, 'pool.json');
    writeFileSync(
      file,
      JSON.stringify({
        redis: { url: server.url, keyPrefix: prefix },
        chains: [
          {
            id: 'ltc',
            network: 'regtest',
            daemons: [{ url: node.rpcUrl, cookieFile: node.cookieFile }],
            payouts: [{ address: pool }],
            payments: { scheme: 'prop', feePercent: 1, minimumPayoutSat: 1000, intervalS: 3600 },
          },
        ],
      }),
    );

    // A block of ours mined to `pool`, credited by a real reporter to the miners 3:2, then matured.
    const reporter = await startReporter(redis, keys, ltc);
    try {
      await credit(reporter, [share(miners[0]!, 3), share(miners[1]!, 1)]);
      const { hash } = await findBlock(redis, keys, ltc, pool);
      await credit(reporter, [share(miners[1]!, 1, hash)]);
      await reporter.pollBlocks();
      await ltc.mine(0, 99);
      await ltc.sync();
    } finally {
      await reporter.close();
    }

    const paid = await run(['payouts', 'pay-now', '--config', file]);
    expect(paid.code, paid.err).toBe(0);
    expect(paid.out).toMatch(/blocks: 1 shared out/);
    expect(paid.out).toMatch(/payment: sent batch \S+ txid [0-9a-f]{64} \d+\.\d{8} to 2 accounts/);

    const audit = await run(['payouts', 'audit', '--config', file]);
    expect(audit.code).toBe(0);
    expect(audit.out).toMatch(/OK, the books balance to the satoshi/);
    expect(audit.out).toMatch(/wallet: 1 of 1 sent batches match their transaction exactly/);

    const status = await run(['payouts', 'status', '--config', file, '--json']);
    expect(status.code).toBe(0);
    const figures = JSON.parse(status.out) as {
      scheme: string;
      balancesSat: string;
      batches: { state: string }[];
    };
    // Only the pool's fee (no feeAddress: kept as @pool, never paid) is left.
    const poolPart = await redis.hget(k.balances, '@pool');
    expect(BigInt(poolPart ?? '0') > 0n).toBe(true);
    expect(figures).toMatchObject({
      scheme: 'prop',
      balancesSat: poolPart,
      blocks: { credited: 1, void: 0 },
    });
    expect(figures.batches.map((b) => b.state)).toEqual(['sent']);

    // With a payer running, pay-now asks it (it holds the lease) instead of paying itself.
    const payer = createPayer({
      redis,
      keys,
      chain: 'ltc',
      coin: 'litecoin',
      network: 'regtest',
      wallet: { url: node.rpcUrl, cookieFile: node.cookieFile },
      settings: resolvePaymentSettings({ scheme: 'prop', minimumPayoutSat: 1000 }),
      id: 'payer-running',
      logger: createLogger({ name: 't', level: 'silent' }),
    });
    await payer.start();
    try {
      await payer.elected(10_000);
      const asked = await run(['payouts', 'pay-now', '--config', file]);
      expect(asked.code, asked.err).toBe(0);
      expect(asked.out).toMatch(/^asked payer payer-running: no new batch/);
    } finally {
      await payer.close();
    }

    // A balance moved outside the ledger is caught.
    await redis.hincrby(k.balances, miners[0]!, 1);
    const bad = await run(['payouts', 'audit', '--config', file]);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain(`PROBLEM: account ${miners[0]}: balance 1 ≠ its ledger 0`);
  }, 180_000);

  it('names what is wrong: an unknown subcommand, a chain without payments', async () => {
    await expect(main(['payouts', 'refund'])).rejects.toThrow(
      /unknown command "refund"; one of status, audit, pay-now, run/,
    );
    const file = join(dir, 'nopay.json');
    writeFileSync(
      file,
      JSON.stringify({
        redis: { url: server.url },
        chains: [
          {
            id: 'ltc',
            network: 'regtest',
            daemons: [{ url: 'http://u:p@127.0.0.1:1/' }],
            payouts: [{ address: 'rltc1qew6ylqhc09q66rpw8efnzfjvd32xy2539whdhv' }],
          },
        ],
      }),
    );
    await expect(main(['payouts', 'status', '--config', file])).rejects.toThrow(
      /no chain of the config has a payments section \(chains\[\]\.payments\)/,
    );
  });

  it('run: the payer from the pool config, with /stats, until SIGTERM', async () => {
    const prefix = `pr${randomBytes(3).toString('hex')}:`;
    const node = ltc.nodes[0]!;
    const file = join(dir, 'run.json');
    writeFileSync(
      file,
      JSON.stringify({
        redis: { url: server.url, keyPrefix: prefix },
        http: { portRange: [0, 0] },
        chains: [
          {
            id: 'ltc',
            network: 'regtest',
            daemons: [{ url: node.rpcUrl, cookieFile: node.cookieFile }],
            payouts: [{ address: await node.rpc.call<string>('getnewaddress') }],
            payments: { scheme: 'prop', intervalS: 3600 },
          },
        ],
      }),
    );
    let ready: (line: { http: string }) => void = () => {};
    const readyLine = new Promise<{ http: string }>((resolve) => {
      ready = resolve;
    });
    const output = captureOutput({
      onWrite: () => {
        const line = output.out.split('\n').find((l) => l.includes('"ready":true'));
        if (line) ready(JSON.parse(line) as { http: string });
      },
    });
    try {
      const running = main(['payouts', 'run', '--config', file]);
      const { http } = await readyLine;
      const stats = await waitFor(
        async () => {
          const s = (await (await fetch(`${http}/stats`)).json()) as {
            id: string;
            leader: boolean;
            runs: number;
          };
          return s.leader && s.runs > 0 ? s : undefined;
        },
        { what: 'the payer holding the lease and running' },
      );
      expect(stats).toMatchObject({ id: 'payouts-ltc-1', leader: true });
      expect((await fetch(`${http}/healthz`)).status).toBe(200);
      process.emit('SIGTERM');
      expect(await running).toBe(0);
      expect(await redis.get(createKeyBuilder({ prefix }).lease('payouts:ltc'))).toBeNull(); // given up
    } finally {
      output.restore();
    }
  });
});
