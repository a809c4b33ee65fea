import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis, getService } from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
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
