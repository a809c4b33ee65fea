import { createMetrics, startStatusServer } from '@hashwire/core';
import { describe, expect, it } from 'vitest';

const TOKEN = 'test-admin-token-0123456789abcdef';
const admin = { authorization: `Bearer ${TOKEN}` };

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

  it('binds the host it is told and publishes a reachable URL; a wildcard bind publishes advertiseHost', async () => {
    const metrics = createMetrics({ service: 'reporter', id: 'rep-1' });
    const told = await startStatusServer({
      portRange: [0, 0],
      host: '127.0.0.3',
      metrics,
      health: () => ({ ok: true }),
      stats: () => ({}),
    });
    const wildcard = await startStatusServer({
      portRange: [0, 0],
      host: '0.0.0.0',
      advertiseHost: '127.0.0.4',
      health: () => ({ ok: true }),
      stats: () => ({}),
    });
    try {
      expect(told.url).toBe(`http://127.0.0.3:${told.port}`);
      expect((await fetch(`${told.url}/metrics`)).status).toBe(200);
      expect(wildcard.url).toBe(`http://127.0.0.4:${wildcard.port}`);
      expect((await fetch(`${wildcard.url}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${wildcard.port}/healthz`)).status).toBe(200);
    } finally {
      await told.close();
      await wildcard.close();
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

  it('POST /drain starts the drain once per request and answers 202 at once; GET is 405', async () => {
    let drains = 0;
    let finish: () => void = () => {};
    const server = await startStatusServer({
      portRange: [0, 0],
      health: () => ({ ok: true }),
      stats: () => ({}),
      adminToken: TOKEN,
      // A drain that takes long: the reply must not wait for it.
      onDrain: () => {
        drains++;
        return new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
    });
    try {
      const reply = await fetch(`${server.url}/drain`, { method: 'POST', headers: admin });
      expect(reply.status).toBe(202);
      expect(await reply.json()).toEqual({ draining: true });
      expect(drains).toBe(1);
      const get = await fetch(`${server.url}/drain`);
      expect(get.status).toBe(405);
      expect(await get.json()).toEqual({ error: 'method GET not allowed; use POST' });
      expect(drains).toBe(1);
    } finally {
      finish();
      await server.close();
    }
  });

  it('answers 500 naming the cause when the drain cannot start', async () => {
    const server = await startStatusServer({
      portRange: [0, 0],
      health: () => ({ ok: true }),
      stats: () => ({}),
      adminToken: TOKEN,
      onDrain: () => {
        throw new Error('already stopped');
      },
    });
    try {
      const reply = await fetch(`${server.url}/drain`, { method: 'POST', headers: admin });
      expect(reply.status).toBe(500);
      expect(await reply.json()).toEqual({ error: 'drain failed', detail: 'already stopped' });
    } finally {
      await server.close();
    }
  });

  it('has no /drain without onDrain: POST is 405, GET is 404', async () => {
    const server = await startStatusServer({
      portRange: [0, 0],
      health: () => ({ ok: true }),
      stats: () => ({}),
    });
    try {
      expect((await fetch(`${server.url}/drain`, { method: 'POST' })).status).toBe(405);
      expect((await fetch(`${server.url}/drain`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('refuses a drain without the admin token, with a wrong one, and from another site; the service is not drained', async () => {
    let drains = 0;
    const server = await startStatusServer({
      portRange: [0, 0],
      health: () => ({ ok: true }),
      stats: () => ({ drains }),
      adminToken: TOKEN,
      onDrain: () => {
        drains++;
      },
    });
    const post = (headers: Record<string, string>, body?: string) =>
      fetch(`${server.url}/drain`, { method: 'POST', headers, ...(body !== undefined && { body }) });
    try {
      const none = await post({});
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await none.json()) as { error: string }).error).toMatch(/admin token required/);
      expect((await post({ authorization: 'Bearer not-the-token' })).status).toBe(401);
      expect((await post({ authorization: TOKEN })).status).toBe(401);
      // What a web page's plain form POST sends: another Origin, a form body, no token.
      const form = await post(
        {
          origin: 'http://evil.example',
          'sec-fetch-site': 'cross-site',
          'content-type': 'application/x-www-form-urlencoded',
        },
        'drain=1',
      );
      expect(form.status).toBe(403);
      expect(await form.json()).toEqual({ error: 'cross-site request refused' });
      // Even a page that somehow had the token is refused from another site.
      expect((await post({ ...admin, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
      expect((await post({ ...admin, 'sec-fetch-site': 'same-site' })).status).toBe(403);
      expect((await post({ ...admin, origin: 'null' })).status).toBe(403);
      expect(drains).toBe(0);
      // Still serving, and the token drains.
      expect(await (await fetch(`${server.url}/stats`)).json()).toEqual({ drains: 0 });
      expect((await post({ ...admin, origin: server.url, 'sec-fetch-site': 'same-origin' })).status).toBe(
        202,
      );
      expect(drains).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('without an admin token, /drain is off (403) whatever is sent', async () => {
    let drains = 0;
    const server = await startStatusServer({
      portRange: [0, 0],
      health: () => ({ ok: true }),
      stats: () => ({}),
      onDrain: () => {
        drains++;
      },
    });
    try {
      const reply = await fetch(`${server.url}/drain`, { method: 'POST', headers: admin });
      expect(reply.status).toBe(403);
      expect(((await reply.json()) as { error: string }).error).toMatch(
        /no admin token \(http.adminTokenFile\)/,
      );
      expect(drains).toBe(0);
    } finally {
      await server.close();
    }
  });
});
