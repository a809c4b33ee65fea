import { headerFieldHex } from '@hashwire/chain';
import { createMetrics } from '@hashwire/core';
import { type StratumServer, observeStratum } from '@hashwire/stratum';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, RawClient, type TestJobSource, USER, createHarness, job } from './server-helpers.js';

let h: Harness;
let server: StratumServer;
let jobs: TestJobSource;

beforeAll(async () => {
  h = await createHarness();
  ({ server, jobs } = await h.start({}));
});
afterAll(() => h.close());

describe('stratum metrics and HTTP face', () => {
  it('answers /healthz while running, counts shares by result in /metrics, and serves /stats', async () => {
    const metrics = createMetrics({ service: 'stratum', id: server.id });
    const http = await observeStratum({ server, metrics, httpPortRange: [0, 0] });
    try {
      const feedless = await fetch(`${http.url}/healthz`);
      expect(feedless.status).toBe(200); // without a feed, only the server's own state counts
      jobs.push(job('m1'));
      const c = await RawClient.connect(server.port);
      await c.request('mining.subscribe', ['cgminer/4.12']);
      await c.request('mining.authorize', [USER, 'x']);
      await c.nextNotification('mining.notify', 0);
      const reply = await c.request('mining.submit', [
        USER,
        'm1',
        '01'.padStart(16, '0'),
        headerFieldHex(1_670_462_000),
        '00000000',
      ]);
      expect(reply.error).toBeNull();
      const text = await (await fetch(`${http.url}/metrics`)).text();
      expect(text).toMatch(/^hashwire_shares_total\{[^}]*result="accepted"[^}]*\} 1$/m);
      expect(await (await fetch(`${http.url}/stats`)).json()).toMatchObject({
        id: server.id,
        state: 'running',
      });
      c.close();
    } finally {
      await http.close();
      await metrics.close();
    }
  });
});
