import { headerFieldHex } from '@hashwire/chain';
import { createLogger } from '@hashwire/core';
import { type Reporter, createReporter, readRound, readShareLog, readWorkers } from '@hashwire/reporter';
import { ShareForwarder, type StratumServer } from '@hashwire/stratum';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADDRESS,
  ANY_DIFF,
  type Harness,
  RawClient,
  TestJobSource,
  USER,
  createHarness,
  job,
} from '../packages/stratum/test/server-helpers.js';

// Issue 14, defect 2, end to end over real TCP, ZeroMQ and Redis: a miner takes its own live
// session over on a second stratum server and submits the same share on both. Each server
// accepts it (neither can know the other saw it), each spools and forwards it to a reporter:
// it is credited exactly once.

const CHAIN = 'btc-main';
let h: Harness;
let a: StratumServer;
let b: StratumServer;
const reporters: Reporter[] = [];
const forwarders: ShareForwarder[] = [];
const jobs = new TestJobSource();
const quiet = createLogger({ name: 'duplicate-share-test', level: 'silent' });

beforeAll(async () => {
  h = await createHarness();
  for (const id of ['rep-1', 'rep-2']) {
    const reporter = await createReporter({
      id,
      chain: CHAIN,
      redis: h.client,
      keys: h.keys,
      logger: quiet,
      blockPollMs: 3_600_000,
    });
    await reporter.start();
    reporters.push(reporter);
  }
  jobs.push(job('d1'));
  ({ server: a } = await h.start({ id: 'stratum-a', jobs }));
  ({ server: b } = await h.start({ id: 'stratum-b', jobs }));
  for (const server of [a, b]) {
    const forwarder = new ShareForwarder({
      spool: server.spool!,
      redis: h.client,
      keys: h.keys,
      stratumId: server.id,
      chain: CHAIN,
    });
    await forwarder.start();
    forwarders.push(forwarder);
  }
});
afterAll(async () => {
  for (const f of forwarders) await f.close();
  await h.close();
  for (const r of reporters) await r.close();
});

/** Seals both spools and waits until every batch is acknowledged by a reporter. */
async function delivered(): Promise<void> {
  for (const server of [a, b]) server.spool!.seal();
  await Promise.all(forwarders.map((f) => f.whenIdle()));
}

describe('the same share through two stratum servers (issue 14)', () => {
  it('is accepted by both servers but credited once, and counted as a duplicate', async () => {
    const first = await RawClient.connect(a.port);
    const one = await first.handshake();
    const submission = [USER, 'd1', 'aa'.repeat(8), headerFieldHex(1_670_462_000), '0000beef'];
    expect(await first.request('mining.submit', submission)).toMatchObject({ result: true });

    // The miner takes its own session over on b: a closes the first connection first.
    const second = await RawClient.connect(b.port);
    const two = await second.handshake(USER, one.sessionId);
    expect(two.extranonce1).toBe(one.extranonce1);
    await first.waitClosed();
    // b cannot know a accepted it: accepted again, upper-case this time.
    const again = [USER, 'd1', 'AA'.repeat(8), headerFieldHex(1_670_462_000), '0000BEEF'];
    expect(await second.request('mining.submit', again)).toMatchObject({ result: true });
    expect(a.stats().shares.accepted + b.stats().shares.accepted).toBe(2);

    await delivered();
    const logged = [];
    for await (const entry of readShareLog(h.client, h.keys, CHAIN)) logged.push(...entry.shares);
    expect(logged.map((s) => [s.extranonce1, s.extranonce2.toLowerCase(), s.nonce.toLowerCase()])).toEqual([
      [one.extranonce1, 'aa'.repeat(8), '0000beef'],
    ]);
    expect(await readRound(h.client, h.keys, CHAIN)).toEqual({ [ADDRESS]: ANY_DIFF });
    expect((await readWorkers(h.client, h.keys, CHAIN)).get(USER)).toMatchObject({
      accepted: 1,
      duplicate: 1,
    });
    const credited = forwarders.reduce((n, f) => n + f.stats().credited, 0);
    expect(credited).toBe(1);
    second.close();
  });
});
