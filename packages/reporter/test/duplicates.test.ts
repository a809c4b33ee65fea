import { createLogger } from '@hashwire/core';
import type { KeyBuilder, Share } from '@hashwire/protocol';
import {
  MIN_REDIS_VERSION,
  type RedisClient,
  RedisVersionError,
  checkRedisVersion,
  connectRedis,
} from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Reporter,
  type ReporterOptions,
  SEEN_SLACK_S,
  createReporter,
  readRound,
  readShareLog,
  readWorkers,
  reporterKeys,
} from '../src/index.js';
import {
  CHAIN,
  type TestBatch,
  batch,
  client,
  send,
  share,
  spoolOf,
  testKeys,
  useReporterBed,
} from './helpers.js';

// Issue 14, defect 2: one share must never be credited twice, whichever path brings it twice
// (two stratum servers, a resumed session, a batch split again under new ids).

const bed = useReporterBed();
const { cleanups, startReporter, rpc } = bed;
let redis: RedisClient;
beforeAll(() => {
  redis = bed.redis;
});

/** `count` accepted shares of one miner on job `jobId`, each a different submission (extranonce2). */
function submissions(count: number, jobId = '2b', from = 0): Share[] {
  return Array.from({ length: count }, (_, i) =>
    share({
      account: 'acct1',
      worker: 'rig1',
      jobId,
      extranonce1: 'f0000001',
      extranonce2: (from + i).toString(16).padStart(16, '0'),
      nonce: '0a0b0c0d',
      diff: 2,
    }),
  );
}

/** The same submission as another stratum server would spool it: its own share id, time, session, address. */
function resent(s: Share): Share {
  return {
    ...s,
    shareId: `${s.shareId}-again`,
    sessionId: 'sess-2',
    ts: s.ts + 1234,
    ip: '10.0.0.2',
  };
}

async function loggedSubmissions(keys: KeyBuilder): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of readShareLog(redis, keys, CHAIN)) {
    for (const s of entry.shares) {
      out.push([s.jobId, s.extranonce1, s.extranonce2, s.ntime, s.nonce, s.version].join('/').toLowerCase());
    }
  }
  return out;
}

describe('cluster-wide duplicate check (issue 14)', () => {
  it('credits a share once when two stratum servers send it in different batches, concurrently, through two reporters', async () => {
    const keys = testKeys();
    const [r1, r2] = await Promise.all([startReporter(keys), startReporter(keys)]);
    const clients = [rpc(r1), rpc(r2)];
    // 100 submissions; server A has 0–59, server B 40–99 (20 in both).
    const all = submissions(100);
    const fromA: TestBatch = batch(all.slice(0, 60), 'stratum-a');
    const fromB: TestBatch = batch(
      all.slice(40).map((s, i) => (i < 20 ? resent(s) : s)),
      'stratum-b',
    );
    // Both batches at once, each also delivered again (a lost ack), through both reporters.
    const replies = await Promise.all([
      send(clients[0]!, fromA),
      send(clients[1]!, fromB),
      send(clients[1]!, fromA),
      send(clients[0]!, fromB),
    ]);
    // Each batch id answers the same reply every time; together they credit 100 submissions.
    expect(replies[2]).toEqual(replies[0]);
    expect(replies[3]).toEqual(replies[1]);
    expect(replies[0]!.credited + replies[1]!.credited).toBe(100);

    expect(await readRound(redis, keys, CHAIN)).toEqual({ acct1: 200 });
    const logged = await loggedSubmissions(keys);
    expect(logged).toHaveLength(100);
    expect(new Set(logged).size).toBe(100);
    // The 20 sent twice count as duplicates of the worker, not as accepted.
    expect((await readWorkers(redis, keys, CHAIN)).get('acct1.rig1')).toMatchObject({
      accepted: 100,
      duplicate: 20,
      acceptedDiff: 200,
    });
    const stats = [r1.stats(), r2.stats()];
    expect(stats[0]!.credited + stats[1]!.credited).toBe(100);
    expect(stats[0]!.shares.duplicate + stats[1]!.shares.duplicate).toBe(20);
    expect(stats[0]!.batches.credited + stats[1]!.batches.credited).toBe(2);
    expect(stats[0]!.batches.duplicate + stats[1]!.batches.duplicate).toBe(2);
  });

  it('credits the same share once whatever the number of batches and reporters racing with it', async () => {
    const keys = testKeys();
    const reporters = await Promise.all([startReporter(keys), startReporter(keys), startReporter(keys)]);
    const clients = reporters.flatMap((r) => [rpc(r), rpc(r)]);
    const [one] = submissions(1, '3c');
    // Twelve stratum servers each spooled it (a hostile miner resuming everywhere).
    const requests = Array.from({ length: 12 }, (_, i) => batch([resent(one!)], `stratum-${i}`));
    const replies = await Promise.all(requests.map((r, i) => send(clients[i % clients.length]!, r)));
    expect(replies.map((r) => r.credited).sort()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(await readRound(redis, keys, CHAIN)).toEqual({ acct1: 2 });
    expect(await loggedSubmissions(keys)).toHaveLength(1);
    expect((await readWorkers(redis, keys, CHAIN)).get('acct1.rig1')).toMatchObject({
      accepted: 1,
      duplicate: 11,
    });
  });

  it('counts a repeat inside one batch as a duplicate, and leaves rejected shares and other jobs alone', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys));
    const [a, b] = submissions(2, '4d');
    const sameOnOtherJob = { ...a!, shareId: 'other-job', jobId: '4e' };
    const stale = { ...resent(b!), shareId: 'stale-copy', result: 'stale' as const };
    const reply = await send(c, batch([a!, b!, resent(a!), sameOnOtherJob, stale]));
    expect(reply.credited).toBe(3);
    expect((await readWorkers(redis, keys, CHAIN)).get('acct1.rig1')).toMatchObject({
      accepted: 3,
      duplicate: 1,
      stale: 1,
    });
  });

  it('credits nothing twice when a batch comes back after its batch id expired, nor when its shares come back under new sub-batch ids', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys));
    const request = batch(submissions(10, '5f'));
    expect(await send(c, request)).toEqual({ batchId: request.batchId, credited: 10 });
    // The spool's acknowledgements are forgotten (their key expired): its shares are still known.
    await redis.del(reporterKeys(keys, CHAIN).spoolAcks(spoolOf(request.stratumId)));
    expect(await send(c, request)).toEqual({ batchId: request.batchId, credited: 0 });
    // Split again under another layout: new ids, same shares.
    const halves = [request.shares.slice(0, 5), request.shares.slice(5)];
    for (const [i, shares] of halves.entries()) {
      const resplit = { ...batch(shares), batchId: `${request.batchId}:${i + 7}` };
      expect(await send(c, resplit)).toEqual({ batchId: resplit.batchId, credited: 0 });
    }
    expect(await readRound(redis, keys, CHAIN)).toEqual({ acct1: 20 });
    expect(await loggedSubmissions(keys)).toHaveLength(10);
  });

  it('keeps share identities per job under the chain hash tag for a day and an hour after the last credit (memory per share measured)', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys));
    const count = 5000;
    await send(c, batch(submissions(count, '6a')));
    const rk = reporterKeys(keys, CHAIN);
    const seenKey = rk.shareSeen('6a');
    expect(seenKey).toBe(`${keys.prefix}seen:{${CHAIN}}:6a`);
    // Every key of the crediting script carries the same hash tag (one Redis Cluster slot).
    expect(seenKey.includes(`{${CHAIN}}`) && rk.round.includes(`{${CHAIN}}`)).toBe(true);
    expect(await redis.hlen(seenKey)).toBe(count);
    const ttl = await redis.ttl(seenKey);
    expect(ttl).toBeGreaterThan(86_400 + SEEN_SLACK_S - 60);
    expect(ttl).toBeLessThanOrEqual(86_400 + SEEN_SLACK_S);
    const bytes = Number(await redis.call('MEMORY', 'USAGE', seenKey, 'SAMPLES', '0'));
    const perShare = bytes / count;
    console.log(JSON.stringify({ seenBytesPerShare: Math.round(perShare) }));
    expect(perShare).toBeLessThan(120);
    // The longest job id the share schema allows, with every punctuation it allows, gets its own key.
    const odd = share({ account: 'acct1', jobId: `j:._-${'z'.repeat(59)}` });
    expect((await send(c, batch([odd]))).credited).toBe(1);
    expect((await send(c, batch([{ ...odd, shareId: 'x' }]))).credited).toBe(0);
  });
});

describe('Redis version', () => {
  const info = (version: string) =>
    `# Server\r\nredis_version:${version}\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n`;

  it('refuses a Redis older than 6.0, naming the version found and the one needed', () => {
    expect(MIN_REDIS_VERSION).toBe('6.0.0');
    for (const old of ['5.0.14', '4.0.9', '2.8.24']) {
      expect(() => checkRedisVersion(info(old), 'reporter r1')).toThrow(RedisVersionError);
      expect(() => checkRedisVersion(info(old), 'reporter r1')).toThrow(
        `reporter r1: Redis ${old} is too old, it needs Redis 6.0.0 or newer`,
      );
    }
    for (const ok of ['6.0.0', '6.2.14', '7.0.15', '7.2.4', '10.0.0'])
      expect(checkRedisVersion(info(ok), 'reporter r1')).toBe(ok);
    expect(() => checkRedisVersion('# Server\r\n', 'reporter r1')).toThrow(/unknown version/);
  });

  it('a reporter on an old Redis fails to start with that error, before it registers', async () => {
    const keys = testKeys();
    // The real connection, answering INFO as a Redis 5 would.
    const old = new Proxy(redis, {
      get(target, prop, receiver) {
        if (prop === 'info') return async () => info('5.0.7');
        return Reflect.get(target, prop, receiver);
      },
    });
    const reporter = await createReporter({
      id: 'r-old',
      chain: CHAIN,
      redis: old,
      keys,
      logger: createLogger({ name: 'reporter-test', level: 'silent' }),
    });
    cleanups.push(() => reporter.close());
    await expect(reporter.start()).rejects.toThrow(
      'reporter r-old: Redis 5.0.7 is too old, it needs Redis 6.0.0 or newer',
    );
    expect(await redis.keys(`${keys.prefix}*`)).toEqual([]);
  });

  it('no Lua script of any package uses a command form newer than Redis 6.0', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const root = new URL('../../', import.meta.url);
    // Forms added in 6.2 / 7.0 that a script could reach for.
    const newer = [
      /'SET'[^\n]*'GET'/, // SET … GET (6.2), with NX (7.0)
      /'(?:P?EXPIRE|P?EXPIREAT)'[^\n]*'(?:NX|XX|GT|LT)'/, // EXPIRE options (7.0)
      /'(?:GETDEL|GETEX|LMPOP|ZMPOP|SINTERCARD|EXPIRETIME|PEXPIRETIME|FCALL)'/,
      /'XADD'[^\n]*'(?:MINID|LIMIT)'/, // 6.2
    ];
    let scripts = 0;
    for (const pkg of readdirSync(root)) {
      let files: string[];
      try {
        files = readdirSync(new URL(`${pkg}/lua/`, root)).filter((f) => f.endsWith('.lua'));
      } catch {
        continue;
      }
      for (const file of files) {
        scripts++;
        const text = readFileSync(new URL(`${pkg}/lua/${file}`, root), 'utf8')
          .split('\n')
          .filter((line) => !line.trimStart().startsWith('--'))
          .join('\n');
        for (const form of newer) expect(form.test(text), `${pkg}/lua/${file} uses ${form}`).toBe(false);
      }
    }
    expect(scripts).toBeGreaterThanOrEqual(10);
  });
});
