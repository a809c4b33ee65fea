import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis, getService } from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { type ApiProcess, call, spawnApi } from './helpers.js';

// The api's /metrics, on its status server, as Prometheus scrapes it from the bin.

let server: RedisServer;
let redis: RedisClient;
let api: ApiProcess;
let metricsUrl: string;

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url);
  const prefix = testKeys().prefix;
  api = await spawnApi({
    id: 'api-metrics',
    redisUrl: server.url,
    keyPrefix: prefix,
    chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    logLevel: 'warn',
  });
  const info = await getService(redis, createKeyBuilder({ prefix }), 'api', 'api-metrics');
  if (!info?.http) throw new Error(`the api registered no http endpoint: ${JSON.stringify(info)}`);
  metricsUrl = `${info.http}/metrics`;
});

afterAll(async () => {
  if (api && api.child.exitCode === null) api.child.kill('SIGTERM');
  await api?.exited;
  redis?.disconnect();
  await server?.stop();
});

/** `name{labels} value` lines of the exposition whose labels include all of `labels`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const has = Object.entries(labels).every(([k, v]) => match[2]!.includes(`${k}="${v}"`));
    if (has) return Number(match[3]);
  }
  return undefined;
}

describe('api /metrics', () => {
  it('counts requests by route pattern and status class, with their latency', async () => {
    const base = api.ready.url;
    for (let i = 0; i < 3; i++) expect((await call(`${base}/v1/pool`)).status).toBe(200);
    expect((await call(`${base}/v1/chains/ltc/accounts/someone/workers?limit=many`)).status).toBe(400);
    expect((await call(`${base}/v1/chains/doge`)).status).toBe(404);
    expect((await call(`${base}/v1/nowhere/${'x'.repeat(20)}`)).status).toBe(404);

    const text = await (await fetch(metricsUrl)).text();
    const requests = (route: string, status: string, method = 'GET') =>
      sample(text, 'hashwire_api_requests_total', { method, route, status, service: 'api' });
    expect(requests('/v1/pool', '2xx')).toBe(3);
    expect(requests('/v1/chains/:chain/accounts/:account/workers', '4xx')).toBe(1);
    expect(requests('/v1/chains/:chain', '4xx')).toBe(1);
    // Unknown paths are one series, whatever the path: no label per account or typo.
    expect(requests('(unmatched)', '4xx')).toBe(1);
    expect(text).not.toContain('xxxxxxxxxxxxxxxxxxxx');
    expect(sample(text, 'hashwire_api_request_seconds_count', { method: 'GET', route: '/v1/pool' })).toBe(3);
    expect(
      sample(text, 'hashwire_api_request_seconds_bucket', { method: 'GET', route: '/v1/pool', le: '+Inf' }),
    ).toBe(3);
    expect(sample(text, 'hashwire_api_request_seconds_sum', { route: '/v1/pool' })).toBeGreaterThan(0);
  });
});
