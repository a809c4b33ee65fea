import { once } from 'node:events';
import { headerFieldHex } from '@hashwire/chain';
import { createMetrics } from '@hashwire/core';
import { BlockUnansweredError, type StratumServer, observeStratum } from '@hashwire/stratum';
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

  it.each([
    {
      state: 'orphaned',
      what: 'a block that lost the race to a sibling',
      answer: async () => ({
        accepted: false,
        orphaned: true,
        hash: 'e'.repeat(64),
        reason: 'orphaned: a sibling block won the race',
      }),
    },
    {
      state: 'stale',
      what: 'a block whose parent was no longer the tip',
      answer: async () => ({
        accepted: false,
        stale: true,
        hash: 'e'.repeat(64),
        reason: 'stale: its parent … was no longer the tip',
      }),
    },
    {
      state: 'stale',
      what: 'a candidate no jobmanager answered before the chain moved on',
      answer: async (): Promise<never> => {
        throw new BlockUnansweredError('stale: the chain moved on before any jobmanager answered', true);
      },
    },
    {
      state: 'unanswered',
      what: 'a candidate no jobmanager answered before the server stopped',
      answer: async (): Promise<never> => {
        throw new BlockUnansweredError('unanswered: the stratum server stopped', false);
      },
    },
  ])('counts $what as $state, not rejected', async ({ state, answer }) => {
    const orphaning = { submitBlock: answer };
    const { server: own, jobs: ownJobs } = await h.start({ blockSink: orphaning });
    const metrics = createMetrics({ service: 'stratum', id: own.id });
    const http = await observeStratum({ server: own, metrics, httpPortRange: [0, 0] });
    try {
      // Regtest-easy block target: every share is a block candidate.
      ownJobs.push(job('easy', { template: { bits: '207fffff', target: `7fffff${'00'.repeat(29)}` } }));
      const c = await RawClient.connect(own.port);
      await c.request('mining.subscribe', ['cgminer/4.12']);
      await c.request('mining.authorize', [USER, 'x']);
      await c.nextNotification('mining.notify', 0);
      const answered = once(own, 'block');
      // Half of all hashes meet a 7fffff… target: try nonces until one is a block candidate.
      for (let nonce = 0; own.stats().shares.blocks === 0; nonce++) {
        await c.request('mining.submit', [
          USER,
          'easy',
          '02'.padStart(16, '0'),
          headerFieldHex(1_670_462_000),
          nonce.toString(16).padStart(8, '0'),
        ]);
      }
      await answered;
      const text = await (await fetch(`${http.url}/metrics`)).text();
      expect(text).toMatch(new RegExp(`^hashwire_blocks_total\\{[^}]*state="${state}"[^}]*\\} 1$`, 'm'));
      expect(text).toMatch(/^hashwire_blocks_total\{[^}]*state="rejected"[^}]*\} 0$/m);
      c.close();
    } finally {
      await http.close();
      await metrics.close();
    }
  });
});
