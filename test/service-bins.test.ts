import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BucketRing, type Share, createKeyBuilder } from '@hashwire/protocol';
import { connectRedis, getService } from '@hashwire/registry';
import { readRound } from '@hashwire/reporter';
import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnService } from './service-process.js';

let redis: RedisServer;
let spoolDir: string;

beforeAll(async () => {
  redis = await startRedis();
  spoolDir = mkdtempSync(join(tmpdir(), 'hw-spool-bins-'));
});
afterAll(async () => {
  await redis?.stop();
  rmSync(spoolDir, { recursive: true, force: true });
});

describe('service bins refuse a bad config with exit 1 and one line naming the field', () => {
  // Built when the test runs: Redis is up only then.
  const stratum = () => ({
    id: 'st-bad',
    chain: 'litecoin-regtest',
    coin: 'litecoin',
    network: 'regtest',
    redisUrl: redis.url,
    spoolDir,
  });
  const reporter = () => ({ id: 'rep-bad', chain: 'litecoin-regtest', redisUrl: redis.url });

  it.each([
    ['stratum', 'id', () => ({ ...stratum(), id: undefined }), /^stratum: id must be a non-empty string$/],
    [
      'stratum',
      'port',
      () => ({ ...stratum(), port: -3 }),
      /^stratum: port must be 0, a port, or a \[first, last\] range/,
    ],
    [
      'stratum',
      'network',
      () => ({ ...stratum(), network: 'regnet' }),
      /^stratum: coin\/network: unknown chain/,
    ],
    [
      'stratum',
      'vardiff',
      () => ({ ...stratum(), vardiff: { enabled: false, initialDifficulty: -1 } }),
      /initialDifficulty/,
    ],
    [
      'stratum',
      'redisUrl',
      () => ({ ...stratum(), redisUrl: 'redis://127.0.0.1:1' }),
      /^stratum: redis: cannot reach redis:\/\/127\.0\.0\.1:1: /,
    ],
    [
      'reporter',
      'redis',
      () => ({ ...reporter(), redisUrl: undefined, redis: { sentinels: 'localhost:26379', name: 'm' } }),
      /^reporter: redis\.sentinels must be a list of \{ host, port \}$/,
    ],
    [
      'jobmanager',
      'redisUrl',
      () => ({ id: 'jm-x', coin: 'litecoin', network: 'regtest' }),
      /^jobmanager: redisUrl must be a non-empty string \(or give redis: Sentinel or Cluster options\)$/,
    ],
    [
      'reporter',
      'chain',
      () => ({ ...reporter(), chain: 7 }),
      /^reporter: chain must be a non-empty string$/,
    ],
    [
      'reporter',
      'confirmations',
      () => ({ ...reporter(), confirmations: -1 }),
      /^reporter: confirmations must be a positive integer/,
    ],
  ] as const)('%s with a bad %s', async (kind, _field, config, message) => {
    const failure = await spawnService(kind, config() as Record<string, unknown>).then(
      () => null,
      (error: Error) => error.message,
    );
    expect(failure).toMatch(/exited \(1\) before ready: /);
    const lines = failure!.replace(/^.*? before ready: /, '').split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});

describe('a running stratum process', () => {
  it('registers its HTTP face: /healthz says why it is not serving yet, /stats and /metrics answer', async () => {
    const keyPrefix = 'bins:';
    const service = await spawnService('stratum', {
      id: 'st-http',
      chain: 'litecoin-regtest',
      coin: 'litecoin',
      network: 'regtest',
      redisUrl: redis.url,
      keyPrefix,
      spoolDir: join(spoolDir, 'st-http'),
      port: 0,
    });
    try {
      const client = connectRedis(redis.url);
      const info = await getService(client, createKeyBuilder({ prefix: keyPrefix }), 'stratum', 'st-http');
      client.disconnect();
      expect(info?.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      // The miners' endpoint and the agent HAProxy asks; no job yet, so the agent says down.
      expect(info?.stratum).toBe(`127.0.0.1:${service.ready.port}`);
      expect(info?.agent).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(await readLine(info!.agent as string)).toBe('down\n');
      // No jobmanager runs: no work to give miners, and /healthz says so (HAProxy will not send any).
      const health = await fetch(`${info!.http}/healthz`);
      expect(health.status).toBe(503);
      expect(await health.json()).toEqual({ ok: false, reasons: ['no job yet'] });
      expect(await (await fetch(`${info!.http}/stats`)).json()).toMatchObject({
        id: 'st-http',
        state: 'running',
      });
      expect(await (await fetch(`${info!.http}/metrics`)).text()).toMatch(
        /^hashwire_connections\{[^}]*\} 0$/m,
      );
    } finally {
      service.child.kill('SIGTERM');
      expect((await service.exited).code).toBe(0);
    }
  });
});

describe('a stratum process with a poisoned spool', () => {
  it('quarantines the sub-batch the reporter refuses, credits the rest, and says so in /stats, /metrics and its log', async () => {
    const keyPrefix = 'binsq:';
    const keys = createKeyBuilder({ prefix: keyPrefix });
    const chain = 'litecoin-regtest';
    // A spool an older version left: one share no reporter accepts, one good share in another bucket.
    const dir = join(spoolDir, 'st-q');
    mkdirSync(dir, { recursive: true });
    const base: Share = {
      shareId: 's-good',
      sessionId: 'sess',
      account: 'good',
      worker: 'rig',
      jobId: 'j1',
      extranonce1: '00000001',
      extranonce2: '00000001',
      ntime: '65f1c2a0',
      nonce: '00000001',
      version: '20000000',
      diff: 2,
      actualDiff: 3,
      result: 'accepted',
      ts: Date.now(),
      ip: '127.0.0.1',
    };
    const evil: Share = { ...base, shareId: 's-evil', account: 'evil', jobId: 'a b', nonce: '00000002' };
    const ring = new BucketRing(['any']);
    expect(ring.bucketFor('good', 'rig')).not.toBe(ring.bucketFor('evil', 'rig'));
    writeFileSync(
      join(dir, `batch-${randomUUID()}.jsonl`),
      `${JSON.stringify(base)}\n${JSON.stringify(evil)}\n`,
    );
    const reporter = await spawnService('reporter', { id: 'rep-q', chain, redisUrl: redis.url, keyPrefix });
    let stratum: Awaited<ReturnType<typeof spawnService>> | undefined;
    try {
      stratum = await spawnService('stratum', {
        id: 'st-q',
        chain,
        coin: 'litecoin',
        network: 'regtest',
        redisUrl: redis.url,
        keyPrefix,
        spoolDir: dir,
        port: 0,
        forwarder: { reconcileMs: 250, retryDelayMs: 100 },
      });
      const client = connectRedis(redis.url);
      try {
        const info = await getService(client, keys, 'stratum', 'st-q');
        type Stats = {
          forwarder: {
            backlogBatches: number;
            quarantine: { subBatches: number; shares: number; dir: string };
          };
        };
        const stats = await waitFor(
          async () => {
            const s = (await (await fetch(`${info!.http}/stats`)).json()) as Stats;
            return s.forwarder.backlogBatches === 0 && s.forwarder.quarantine.subBatches > 0 && s;
          },
          { timeoutMs: 20_000, what: 'the poisoned sub-batch in quarantine' },
        );
        expect(stats.forwarder).toMatchObject({
          quarantinedSubBatches: 1,
          quarantinedShares: 1,
          ackedShares: 1,
          quarantine: { subBatches: 1, shares: 1, dir: join(dir, 'quarantine') },
        });
        expect(await readRound(client, keys, chain)).toEqual({ good: 2 });
        const metrics = await (await fetch(`${info!.http}/metrics`)).text();
        expect(metrics).toMatch(/^hashwire_quarantined_batches_total\{[^}]*reason="refused"[^}]*\} 1$/m);
        expect(metrics).toMatch(/^hashwire_quarantined_batches_total\{[^}]*reason="expired"[^}]*\} 0$/m);
        const logged = stratum
          .logs()
          .split('\n')
          .filter((line) => line.includes('share sub-batch quarantined'));
        expect(logged).toHaveLength(1);
        expect(JSON.parse(logged[0]!)).toMatchObject({
          level: 'error',
          reason: 'refused',
          reporters: ['rep-q'],
        });
        expect(JSON.parse(logged[0]!).message).toMatch(/jobId/);
      } finally {
        client.disconnect();
      }
    } finally {
      stratum?.child.kill('SIGTERM');
      if (stratum) expect((await stratum.exited).code).toBe(0);
      reporter.child.kill('SIGTERM');
      expect((await reporter.exited).code).toBe(0);
    }
  });
});

/** Everything a TCP endpoint (`host:port`) says before it closes: the agent check's one line. */
function readLine(endpoint: string): Promise<string> {
  const [host, port] = endpoint.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect(Number(port), host);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('error', reject);
    socket.on('end', () => resolve(text));
  });
}
