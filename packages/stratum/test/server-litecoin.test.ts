import {
  type BlockTemplate,
  type BuiltJob,
  LITECOIN_REGTEST,
  assembleTemplateBlock,
  buildJob,
  headerFieldHex,
} from '@hashwire/chain';
import type { BlockEvent, BlockSink, StratumServer, SubmitBlockRequest } from '@hashwire/stratum';
import { type LitecoinRegtest, startLitecoinRegtest, startSimMiners } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, RawClient, TestJobSource, createHarness } from './server-helpers.js';

const CHAIN = 'ltc-regtest';

/**
 * What the jobmanager does, in miniature: a job from node0's template on every block node0
 * learns about (clean), and blocks assembled from the job's template and submitted to node0.
 */
class TemplateJobs implements BlockSink {
  readonly source = new TestJobSource();
  readonly built = new Map<string, { template: BlockTemplate; built: BuiltJob }>();
  private seq = 0;
  private prevhash = '';

  constructor(
    private readonly ltc: LitecoinRegtest,
    private readonly payout: string,
  ) {
    ltc.receiver.on('block', (_hash, source) => {
      if (source === 'node0') void this.refresh();
    });
  }

  /** A new clean job when node0's template builds on a new block (a late notify changes nothing). */
  async refresh(): Promise<void> {
    const template = await this.ltc.rpc[0]!.getBlockTemplate();
    if (template.previousblockhash === this.prevhash) return;
    this.prevhash = template.previousblockhash;
    const jobId = `t${++this.seq}`;
    const built = buildJob({
      template,
      params: LITECOIN_REGTEST,
      chain: CHAIN,
      payouts: [{ address: this.payout }],
      extranonce1Size: 4,
      extranonce2Size: 4,
      epoch: 1,
      jobId,
      jmId: 'test-jm',
      cleanJobs: true,
    });
    this.built.set(jobId, { template, built });
    this.source.push(built.job);
  }

  async submitBlock(request: SubmitBlockRequest) {
    const entry = this.built.get(request.jobId)!;
    const block = assembleTemplateBlock({
      template: entry.template,
      params: LITECOIN_REGTEST,
      coinbase: entry.built.coinbase,
      extranonce1: Buffer.from(request.extranonce1, 'hex'),
      extranonce2: Buffer.from(request.extranonce2, 'hex'),
      ntime: Number.parseInt(request.ntime, 16),
      nonce: Number.parseInt(request.nonce, 16),
      version: Number.parseInt(request.version, 16),
    });
    const verdict = await this.ltc.rpc[0]!.submitBlock(block.blockHex);
    return {
      accepted: verdict.accepted,
      hash: block.hashHex,
      ...(verdict.reason && { reason: verdict.reason }),
    };
  }
}

let ltc: LitecoinRegtest;
let h: Harness;
let jobs: TemplateJobs;
let payout: string;
let minerAddress: string;

beforeAll(async () => {
  [ltc, h] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), createHarness()]);
  payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
  minerAddress = await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'bech32']);
  jobs = new TemplateJobs(ltc, payout);
  await jobs.refresh();
});
afterAll(async () => {
  await h?.close();
  await ltc?.stop();
});

function start(extra: Parameters<Harness['start']>[0] = {}): Promise<StratumServer> {
  return h
    .start({
      chain: CHAIN,
      params: LITECOIN_REGTEST,
      jobs: jobs.source,
      blockSink: jobs,
      extranonce2Size: 4,
      ...extra,
      vardiff: { initialDifficulty: 1e-6, minDifficulty: 1e-9, enabled: false },
    })
    .then((r) => r.server);
}

describe('with real litecoind regtest (MWEB active)', () => {
  it('sim miners find blocks through the server that litecoind accepts and its peer follows', async () => {
    const server = await start();
    const accepted: BlockEvent[] = [];
    const enough = new Promise<void>((resolve) => {
      server.on('block', (event) => {
        if (event.reply?.accepted) accepted.push(event);
        if (accepted.length === 2) resolve();
      });
    });
    const startHeight = await ltc.rpc[0]!.getBlockCount();
    const miners = await startSimMiners({
      host: '127.0.0.1',
      port: server.port,
      workers: 2,
      username: (i) => `${minerAddress}.sim${i}`,
      algorithm: 'scrypt',
      versionRolling: true,
      hashesPerSecondLimit: 40,
    });
    try {
      await enough;
    } finally {
      await miners.stop();
    }
    const tip = await ltc.sync();
    expect(await ltc.rpc[1]!.getBlockCount()).toBeGreaterThanOrEqual(startHeight + 2);
    for (const event of accepted) {
      const block = await ltc.rpc[1]!.call<{
        height: number;
        tx: { vout: { scriptPubKey: { address?: string; addresses?: string[] } }[] }[];
      }>('getblock', [event.reply!.hash, 2]);
      expect(block.height).toBeGreaterThan(startHeight);
      const paid = block.tx[0]!.vout.flatMap((o) => o.scriptPubKey.address ?? o.scriptPubKey.addresses ?? []);
      expect(paid).toContain(payout);
      expect(event.share).toMatchObject({ result: 'accepted', blockHash: event.reply!.hash });
      // The finder goes with the block to the jobmanager (its record and block.* events carry it).
      expect(event.request).toMatchObject({
        account: minerAddress,
        worker: expect.stringMatching(/^sim[01]$/),
      });
    }
    expect(tip).toMatch(/^[0-9a-f]{64}$/);
    expect(miners.stats().total.rejectedByCode[20] ?? 0).toBe(0);
  });

  it('classifies stale and duplicate shares right around a block found elsewhere', async () => {
    await ltc.sync();
    await jobs.refresh();
    const server = await start({
      blockSink: { submitBlock: () => Promise.reject(new Error('no blocks in this test')) },
    });
    const c = await RawClient.connect(server.port);
    const { extranonce1, notify } = await c.handshake(`${minerAddress}.raw`);
    const old = notify.params as [string, string, string, string, string[], string, string, string, boolean];
    const oldJob = server.book.get(old[0])!;
    let en2 = 0;
    /** A share on the old job that is no block (so nothing changes the tip but the other node). */
    const share = () => {
      for (;;) {
        const extranonce2 = (++en2).toString(16).padStart(8, '0');
        const block = assembleTemplateBlock({
          template: jobs.built.get(old[0])!.template,
          params: LITECOIN_REGTEST,
          coinbase: jobs.built.get(old[0])!.built.coinbase,
          extranonce1: Buffer.from(extranonce1, 'hex'),
          extranonce2: Buffer.from(extranonce2, 'hex'),
          ntime: oldJob.ntime,
          nonce: 0,
        });
        if (!block.meetsTarget)
          return [`${minerAddress}.raw`, old[0], extranonce2, headerFieldHex(oldJob.ntime), '00000000'];
      }
    };
    const first = share();
    expect(await c.request('mining.submit', first)).toMatchObject({ result: true });
    expect(await c.request('mining.submit', first)).toMatchObject({ error: [22, 'duplicate share', null] });

    // The other node finds a block: node0 hears of it, a clean job follows.
    const clean = c.waitFor(
      (m) => m.method === 'mining.notify' && m.params![8] === true && m.params![0] !== old[0],
    );
    await ltc.mine(1, 1);
    const fresh = (await clean).params as [string];
    expect(fresh[0]).not.toBe(old[0]);
    expect(await c.request('mining.submit', share())).toMatchObject({ error: [21, 'stale job', null] });
    expect(await c.request('mining.submit', first)).toMatchObject({ error: [21, 'stale job', null] });
    expect(
      await c.request('mining.submit', [
        `${minerAddress}.raw`,
        fresh[0],
        'ffffffff',
        headerFieldHex(server.book.get(fresh[0])!.ntime),
        '00000000',
      ]),
    ).toMatchObject({ error: null });
    c.close();
  });
});
