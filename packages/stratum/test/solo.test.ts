import {
  BITCOIN_MAIN,
  addressToScript,
  blockHashHex,
  merkleRootFromBranch,
  prevHashFromStratum,
  sha256d,
  soloCoinb2,
  writeHeader,
} from '@hashwire/chain';
import type { Job } from '@hashwire/protocol';
import { StratumErrorCode } from '@hashwire/protocol';
import type { BlockEvent } from '@hashwire/stratum';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDRESS, type Harness, RawClient, createHarness, job } from './server-helpers.js';

/** Bitcoin main addresses of other miners: a base58 p2pkh and a bech32 p2wsh. */
const OTHER = '1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa';
const THIRD = 'bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3';
const FEE = { feeBasisPoints: 150, feeAddress: '3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy' };
/** Every hash meets it: every share is a block candidate. */
const EASY = 'ff'.repeat(32);

type Notify = [string, string, string, string, string[], string, string, string, boolean];

/** The coinb2 a SOLO job gives `address`, as the jobmanager would build it. */
function coinb2For(j: Job, address: string): string {
  const solo = j.solo!;
  return soloCoinb2(
    {
      head: Buffer.from(solo.coinb2Head, 'hex'),
      finderValueSat: solo.finderValueSat,
      tail: Buffer.from(solo.coinb2Tail, 'hex'),
    },
    addressToScript(address, BITCOIN_MAIN),
  ).toString('hex');
}

/** The block hash a miner gets from the notify it was sent, with nonce 0. */
function minerBlockHash(n: Notify, extranonce1: string, extranonce2: string, coinb2 = n[3]): string {
  const coinbase = Buffer.from(n[2] + extranonce1 + extranonce2 + coinb2, 'hex');
  const root = merkleRootFromBranch(
    sha256d(coinbase),
    n[4].map((h) => Buffer.from(h, 'hex')),
  );
  return blockHashHex(
    writeHeader(Buffer.alloc(80), {
      version: Number.parseInt(n[5], 16),
      prevHash: prevHashFromStratum(n[1]),
      merkleRoot: root,
      time: Number.parseInt(n[7], 16),
      bits: Number.parseInt(n[6], 16),
      nonce: 0,
    }),
  );
}

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('SOLO jobs', () => {
  it('send each session a coinbase paying its own address, and judge its shares with that coinbase', async () => {
    const { server, jobs, blocks } = await h.start({ solo: true });
    const soloJob = job('a1', { solo: FEE, template: { target: EASY } });
    jobs.push(soloJob);
    const [a, b, a2] = await Promise.all([1, 2, 3].map(() => RawClient.connect(server.port)));
    const ha = await a!.handshake(`${ADDRESS}.rig1`);
    const hb = await b!.handshake(`${OTHER}.rig1`);
    const ha2 = await a2!.handshake(`${ADDRESS.toUpperCase()}.rig2`);
    const na = ha.notify.params as Notify;
    const nb = hb.notify.params as Notify;
    const na2 = ha2.notify.params as Notify;
    expect(na[0]).toBe('a1');
    expect(na[3]).toBe(coinb2For(soloJob, ADDRESS));
    expect(nb[3]).toBe(coinb2For(soloJob, OTHER));
    expect(na[3]).not.toBe(nb[3]);
    // One address in two spellings is one account, one coinbase, one line.
    expect(na2).toEqual(na);
    // Never the pool's coinbase.
    expect(na[3]).not.toBe(soloJob.coinb2);

    // A block found by b is hashed with b's coinbase and submitted for b's address.
    const found = new Promise<BlockEvent>((resolve) => server.once('block', resolve));
    const reply = await b!.request('mining.submit', [
      `${OTHER}.rig1`,
      'a1',
      '00'.repeat(8),
      nb[7],
      '00000000',
    ]);
    expect(reply).toMatchObject({ result: true, error: null });
    const event = await found;
    expect(event.share.blockHash).toBe(minerBlockHash(nb, hb.extranonce1, '00'.repeat(8)));
    expect(event.share.blockHash).not.toBe(
      minerBlockHash(nb, hb.extranonce1, '00'.repeat(8), soloJob.coinb2),
    );
    expect(blocks.requests.at(-1)).toMatchObject({ jobId: 'a1', account: OTHER, payoutAddress: OTHER });

    // A second job: a new line per address, still one per address.
    const next = job('a2', { solo: FEE, template: { target: EASY, previousblockhash: '22'.repeat(32) } });
    const [na3, nb3] = await Promise.all([
      a!.nextNotification('mining.notify'),
      b!.nextNotification('mining.notify'),
      Promise.resolve(jobs.push(next)),
    ]);
    expect((na3!.params as Notify)[3]).toBe(coinb2For(next, ADDRESS));
    expect((nb3!.params as Notify)[3]).toBe(coinb2For(next, OTHER));
    expect(server.book.get('a2')!.solo!.addresses).toBe(2);
    for (const c of [a, b, a2]) c!.close();
  });

  it('with solo on, refuse a second payout address on one connection and a bad address, in plain words', async () => {
    const { server, jobs } = await h.start({ solo: true });
    jobs.push(job('b1', { solo: FEE }));
    const c = await RawClient.connect(server.port);
    await c.handshake(`${ADDRESS}.rig1`);
    expect(await c.request('mining.authorize', [`${ADDRESS}.rig2`, 'x'])).toMatchObject({ result: true });
    const other = await c.request('mining.authorize', [`${THIRD}.rig3`, 'x']);
    expect(other.result).toBeNull();
    expect(other.error).toEqual([
      StratumErrorCode.Unauthorized,
      expect.stringMatching(/SOLO.*one payout address/),
      null,
    ]);
    const d = await RawClient.connect(server.port);
    await d.request('mining.subscribe', ['raw/1']);
    const bad = await d.request('mining.authorize', ['mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn.rig', 'x']);
    expect(bad.error?.[0]).toBe(StratumErrorCode.Unauthorized);
    expect(bad.error?.[1]).toMatch(/address/);
    expect(bad.error?.[1]).not.toMatch(/\n\s+at /);
    c.close();
    d.close();
  });

  it('refuse a second payout address on a SOLO job even when the server was not told it pays SOLO', async () => {
    const { server, jobs } = await h.start();
    jobs.push(job('c1', { solo: FEE }));
    const c = await RawClient.connect(server.port);
    await c.handshake(`${ADDRESS}.rig1`);
    expect(server.book.current?.solo).toBeTruthy();
    const other = await c.request('mining.authorize', [`${THIRD}.rig3`, 'x']);
    expect(other.result).toBeNull();
    expect(other.error?.[1]).toMatch(/SOLO.*one payout address/);
    c.close();
  });

  it('refuse a SOLO job whose coinbase end is not hex, and keep serving', async () => {
    const { server, jobs } = await h.start();
    const broken = {
      ...job('c1', { solo: FEE }),
      solo: { coinb2Head: 'zz', finderValueSat: 1, coinb2Tail: '' },
    };
    jobs.push(broken as Job);
    expect(server.book.get('c1')).toBeUndefined();
    jobs.push(job('c2', { solo: FEE }));
    const c = await RawClient.connect(server.port);
    expect(((await c.handshake(`${ADDRESS}.rig1`)).notify.params as Notify)[0]).toBe('c2');
    c.close();
  });
});
