import { createMetrics, startStatusServer } from '@hashwire/core';
import { describe, expect, it } from 'vitest';

describe('status server', () => {
  it('answers /healthz, /stats and /metrics, and 503 with reasons when unhealthy', async () => {
    let ok = true;
    const metrics = createMetrics({ service: 'stratum', id: 'st-1' });
    metrics.shares('accepted');
    const server = await startStatusServer({
      portRange: [0, 0],
      metrics,
      health: () => (ok ? { ok } : { ok, reasons: ['no daemon answered for 61 s'] }),
      stats: () => ({ sessions: 3 }),
    });
    try {
      expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
      const health = await fetch(`${server.url}/healthz`);
      expect(health.status).toBe(200);
      ok = false;
      const sick = await fetch(`${server.url}/healthz`);
      expect(sick.status).toBe(503);
      expect(await sick.json()).toEqual({ ok: false, reasons: ['no daemon answered for 61 s'] });
      expect(await (await fetch(`${server.url}/stats`)).json()).toEqual({ sessions: 3 });
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text).toMatch(/^hashwire_shares_total\{.*result="accepted".*\} 1$/m);
      const missing = await fetch(`${server.url}/nope`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ error: 'no /nope; try /healthz, /stats, /metrics' });
      expect((await fetch(`${server.url}/stats`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
      await metrics.close();
    }
  });

  it('takes the next port when the first of its range is taken', async () => {
    const a = await startStatusServer({ portRange: [0, 0], health: () => ({ ok: true }), stats: () => ({}) });
    const b = await startStatusServer({
      portRange: [a.port, a.port + 20],
      health: () => ({ ok: true }),
      stats: () => ({}),
    });
    try {
      expect(b.port).toBeGreaterThan(a.port);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
