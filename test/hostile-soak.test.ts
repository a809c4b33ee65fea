import { hostileAuthorizeParams, hostileSubmitParams, hostileValue, waitFor } from '@hashwire/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type StratumSocket as Conn, StratumSocket, grindShare } from './hostile-clients.js';
import { CHAIN, startTestPool } from './pool-harness.js';
import { compareShares, describeShares, readLoggedShares, submissionKey } from './share-ledger.js';

// Issue 14, "Trust I": 20 honest sim miners mine through HAProxy while 5 hostile clients attack
// the same pool for 60 s: random junk from the property generator, job ids and worker names
// no reporter would read, the same share through two stratum servers at the same moment, live
// sessions taken over from the other server, and submit floods. Afterwards every share an
// honest miner saw accepted is credited exactly once, no share is credited twice whoever sent
// it, nothing waits in a spool, and quarantine is empty (the pool wrote nothing a reporter
// could not read).

/** Dyadic, so every sum of credited difficulty is exact. */
const DIFF = 2 ** -9;
const SOAK_MS = 60_000;
const HONEST = 20;

interface Attacks {
  junk: number;
  poison: number;
  sameMoment: number;
  sameMomentAccepted: number;
  takeovers: number;
  takeoverSameEn1: number;
  flooded: number;
  floodAnswered: number;
  refusedConnects: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('hostile-miner soak (issue 14)', () => {
  it('20 honest miners and 5 hostile clients for 60 s through HAProxy: every honest accepted share credited exactly once, no share credited twice, no backlog, nothing quarantined', async () => {
    const started = Date.now();
    const p = await startTestPool({ diff: DIFF });
    const hostileAccount = await p.ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
    const honest = await p.startMiners({ tag: 'h', workers: HONEST, firstAddress: 2, hashesPerSecond: 400 });
    await honest.miners.until((s) => s.total.accepted >= 40, 30_000);

    const deadline = Date.now() + SOAK_MS;
    const live = () => Date.now() < deadline;
    const attacks: Attacks = {
      junk: 0,
      poison: 0,
      sameMoment: 0,
      sameMomentAccepted: 0,
      takeovers: 0,
      takeoverSameEn1: 0,
      flooded: 0,
      floodAnswered: 0,
      refusedConnects: 0,
    };
    const conns: Conn[] = [];
    const open = async (address: string): Promise<Conn | null> => {
      const conn = await StratumSocket.open(p.front.port, address);
      if (!conn) attacks.refusedConnects++;
      else conns.push(conn);
      return conn;
    };
    const user = (worker: string) => `${hostileAccount}.${worker}`;

    // 1. Random junk: any method, any params, from the property generator.
    const methods = [
      'mining.subscribe',
      'mining.authorize',
      'mining.submit',
      'mining.configure',
      'mining.suggest_difficulty',
      'mining.extranonce.subscribe',
      'mining.get_transactions',
      'no.such.method',
    ];
    const junk = async () => {
      while (live()) {
        const conn = await open('127.0.0.101');
        if (!conn) {
          await pause(200);
          continue;
        }
        // Half the time an honest-looking handshake first, so submits reach share validation.
        if (Math.random() < 0.5) await conn.handshake(user('junk'));
        while (live() && !conn.closed) {
          const jobId = typeof conn.notify?.[0] === 'string' ? conn.notify[0] : null;
          const method = methods[Math.floor(Math.random() * methods.length)]!;
          const arbitrary =
            method === 'mining.submit'
              ? hostileSubmitParams({
                  usernames: [user('junk')],
                  jobIds: jobId ? [jobId] : [],
                  extranonce2Size: conn.extranonce2Size,
                  ...(typeof conn.notify?.[7] === 'string' && { ntimes: [conn.notify[7]] }),
                })
              : method === 'mining.authorize'
                ? hostileAuthorizeParams({ addresses: [hostileAccount] })
                : hostileValue();
          const [params] = fc.sample(arbitrary, 1);
          if (Math.random() < 0.1) conn.write(`${JSON.stringify(params)}\n`);
          else await conn.request(method, params);
          attacks.junk++;
        }
        conn.close();
        // Banned, or closed for too many errors: come back, at a rate that leaves the test's
        // own sim miners their share of the CPU.
        await pause(100);
      }
    };

    // 2. Shares no reporter would read: job ids with whitespace, control characters, unicode,
    //    200 characters, numbers and arrays, and hostile worker names.
    const poisonJobIds: unknown[] = [
      'a b',
      ' ',
      '',
      '\u0000',
      'é',
      '\n',
      'x'.repeat(200),
      7,
      null,
      ['a'],
      { a: 1 },
    ];
    const poisonWorkers = ['rig 1', 'rig\u0007', '😀', 'x'.repeat(10_000), 'a|b', '../../etc'];
    const poison = async () => {
      let n = 0;
      while (live()) {
        const conn = await open('127.0.0.102');
        if (!conn) {
          await pause(200);
          continue;
        }
        if (!(await conn.handshake(user('p')))) {
          conn.close();
          await pause(200);
          continue;
        }
        await conn.request('mining.authorize', [user(poisonWorkers[n % poisonWorkers.length]!), 'x']);
        const job = await conn.job();
        while (live() && !conn.closed && job) {
          const jobId = poisonJobIds[n++ % poisonJobIds.length];
          const share = grindShare(conn, n) ?? ['x', '00', '00', '00'];
          await conn.request('mining.submit', [user('p'), jobId, share[1], share[2], share[3]]);
          attacks.poison++;
        }
        conn.close();
      }
    };

    // 3 and 4. Two connections of one session, one on each stratum server (HAProxy balances by
    //    source address, and the extranonce1 prefix tells the server): the same valid share sent
    //    through both at the same moment, and live sessions taken over from the other server.
    const slotOf = (conn: Conn) => conn.extranonce1.slice(0, 4);
    const pairAddresses = async (): Promise<[string, string]> => {
      const seen = new Map<string, string>();
      for (let i = 110; i < 160; i++) {
        const conn = await open(`127.0.0.${i}`);
        if (!conn) continue;
        await conn.handshake(user('probe'));
        const slot = slotOf(conn);
        conn.close();
        if (!seen.has(slot)) seen.set(slot, `127.0.0.${i}`);
        if (seen.size === 2) return [...seen.values()] as [string, string];
      }
      throw new Error('no two source addresses that HAProxy sends to different stratum servers');
    };
    const [addressA, addressB] = await pairAddresses();
    const sameMoment = async (worker: string) => {
      let counter = 1;
      while (live()) {
        const a = await open(addressA);
        if (!a || !(await a.handshake(user(worker)))) {
          a?.close();
          await pause(200);
          continue;
        }
        await a.job();
        const share = grindShare(a, counter++);
        const b = await open(addressB);
        if (!share || !b) {
          a.close();
          b?.close();
          continue;
        }
        // A takeover of the live session on the other server.
        await b.handshake(user(worker), a.sessionId);
        attacks.takeovers++;
        if (b.extranonce1 === a.extranonce1) attacks.takeoverSameEn1++;
        const replies = await Promise.all([
          a.request('mining.submit', [user(worker), ...share]),
          b.request('mining.submit', [user(worker), ...share]),
        ]);
        attacks.sameMoment++;
        attacks.sameMomentAccepted += replies.filter((r) => r?.result === true).length;
        // And mine on at B for a while with the session it now holds.
        await b.job();
        for (let i = 0; i < 5 && live() && !b.closed; i++) {
          const more = grindShare(b, counter++);
          if (more) await b.request('mining.submit', [user(worker), ...more]);
        }
        a.close();
        b.close();
      }
    };

    // 5. Submit floods: a thousand submits in one write, again and again.
    const flood = async () => {
      while (live()) {
        const conn = await open('127.0.0.105');
        if (!conn || !(await conn.handshake(user('flood')))) {
          conn?.close();
          await pause(200);
          continue;
        }
        const job = (await conn.job()) as string[] | null;
        while (live() && !conn.closed && job) {
          const burst = Array.from({ length: 1000 }, (_, i) => [
            user('flood'),
            job[0]!,
            (attacks.flooded + i).toString(16).padStart(conn.extranonce2Size * 2, '0'),
            job[7]!,
            'deadbeef',
          ]);
          const replies = await conn.burst('mining.submit', burst);
          attacks.flooded += burst.length;
          attacks.floodAnswered += replies.filter((r) => r !== null).length;
        }
        conn.close();
      }
    };

    const creditedAtStart = (await readLoggedShares(p.redis, p.keys, CHAIN)).length;
    await Promise.all([junk(), poison(), sameMoment('dup'), sameMoment('take'), flood()]);
    const creditedAtEnd = (await readLoggedShares(p.redis, p.keys, CHAIN)).length;
    // Honest shares accepted in each third of the soak (every one of them is checked credited
    // below): none empty means the attacks never froze anyone's mining or crediting.
    const thirds = [0, 1, 2].map((i) => {
      const from = deadline - SOAK_MS + (i * SOAK_MS) / 3;
      return honest.miners
        .shares()
        .filter((s) => s.answer === 'accepted' && s.answeredAt! >= from && s.answeredAt! < from + SOAK_MS / 3)
        .length;
    });

    // Settle: honest miners stop, every spool is carried to the reporters.
    const stoppedAt = Date.now();
    await honest.miners.stop();
    const stratumStats = async () =>
      Promise.all(
        ['st-1', 'st-2'].map(
          async (id) =>
            (
              await p.http<{
                forwarder: { backlogBatches: number; quarantinedSubBatches: number };
                spool: { open: number; pendingBatches: number };
              }>('stratum', id, '/stats')
            ).body,
        ),
      );
    let stats = await stratumStats();
    await waitFor(
      async () => {
        stats = await stratumStats();
        return stats.every(
          (s) => s.spool.open === 0 && s.spool.pendingBatches === 0 && s.forwarder.backlogBatches === 0,
        );
      },
      { timeoutMs: 30_000, what: 'every spool sealed and carried to a reporter' },
    ).catch(() => {});
    expect
      .soft(
        stats.map((s) => [s.spool.open, s.spool.pendingBatches, s.forwarder.backlogBatches]),
        'shares unsealed, batches pending, batches waiting for a reporter 30 s after the soak',
      )
      .toEqual([
        [0, 0, 0],
        [0, 0, 0],
      ]);
    expect
      .soft(
        stats.map((s) => s.forwarder.quarantinedSubBatches),
        'quarantined sub-batches (the pool wrote something a reporter could not read)',
      )
      .toEqual([0, 0]);

    const logged = await readLoggedShares(p.redis, p.keys, CHAIN);
    // Honest miners: share by share.
    const ledger = compareShares(
      honest.miners.shares(),
      logged.filter((s) => s.account === p.account),
    );
    expect.soft(describeShares(ledger.lost), 'honest shares seen accepted, never credited').toEqual([]);
    expect.soft(ledger.doubled, 'honest submissions credited more than once').toEqual([]);
    expect.soft(ledger.unknown.length, 'credited honest-account shares no honest miner sent').toBe(0);
    expect.soft(ledger.creditedRejections, 'credited shares the miner was told were rejected').toEqual([]);
    expect
      .soft(
        honest.disconnects.filter((d) => d.at < stoppedAt),
        'honest miners cut off while the hostile clients attacked',
      )
      .toEqual([]);
    // Whoever sent it, no share identity is credited twice.
    const byIdentity = new Map<string, number>();
    for (const s of logged) byIdentity.set(submissionKey(s), (byIdentity.get(submissionKey(s)) ?? 0) + 1);
    expect
      .soft(
        [...byIdentity].filter(([, n]) => n > 1),
        'share identities credited twice',
      )
      .toEqual([]);
    const unanswered = conns.reduce((sum, c) => sum + c.unanswered, 0);
    expect
      .soft(
        unanswered,
        `requests left unanswered on an open connection: ${conns
          .flatMap((c) => c.unansweredRequests)
          .slice(0, 10)
          .join('\n')}`,
      )
      .toBe(0);
    // The attacks really ran, and honest crediting never froze.
    expect.soft(attacks.junk, 'junk requests sent').toBeGreaterThan(20);
    expect.soft(attacks.poison).toBeGreaterThan(10);
    expect.soft(attacks.sameMoment).toBeGreaterThan(5);
    expect.soft(attacks.flooded).toBeGreaterThanOrEqual(1000);
    expect
      .soft(
        thirds.every((n) => n > 0),
        `honest shares accepted in each third of the soak: ${thirds.join(', ')}`,
      )
      .toBe(true);
    expect.soft(creditedAtEnd - creditedAtStart, 'shares credited during the soak').toBeGreaterThan(0);

    console.log(
      JSON.stringify({
        seconds: Math.round((Date.now() - started) / 1000),
        honestSubmitted: ledger.submitted.size,
        honestAcceptedByThird: thirds,
        honestAnswers: ledger.answers,
        credited: logged.length,
        hostileCredited: logged.filter((s) => s.account === hostileAccount).length,
        attacks,
        unanswered,
      }),
    );
  }, 240_000);
});
