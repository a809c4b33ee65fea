import { randomBytes } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import { HaproxyRuntime, followApiServers, renderHaproxy } from '@hashwire/confgen';
import { createKeyBuilder } from '@hashwire/protocol';
import {
  type RedisClient,
  type ServiceRegistration,
  connectRedis,
  registerService,
} from '@hashwire/registry';
import { type RedisServer, getFreePort, startHaproxy, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

// The api backend following the registry through a real HAProxy: instances added with an HTTP
// check on their status port's /healthz, a restart on another status port followed, an
// unhealthy instance left out of the traffic.

let redisServer: RedisServer;
let redis: RedisClient;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
  redis = connectRedis(redisServer.url);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis.disconnect();
  await redisServer.stop();
});

async function listen(
  handler: Parameters<typeof createServer>[1],
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  server.unref();
  return { server, port: (server.address() as { port: number }).port };
}

/** An api instance as HAProxy sees it: the API (answers with its id) and a status server's /healthz. */
async function instance(keys: ReturnType<typeof createKeyBuilder>, id: string) {
  const state = { healthy: true };
  const api = await listen((_req, res) => res.end(id));
  const startStatus = () =>
    listen((req, res) => {
      res.statusCode = req.url === '/healthz' && state.healthy ? 200 : 503;
      res.end();
    });
  let status = await startStatus();
  let registration: ServiceRegistration;
  const register = async () => {
    registration = await registerService({
      redis,
      keys,
      kind: 'api',
      id,
      api: `http://127.0.0.1:${api.port}`,
      http: `http://127.0.0.1:${status.port}`,
    });
  };
  await register();
  cleanups.push(() => registration.close());
  return {
    state,
    statusPort: () => status.port,
    /** The same id back from a restart whose status server took another port. */
    async restart() {
      await registration.close();
      // The new status server listens before the old one closes: the kernel may hand a port
      // just freed straight back (one CI run got the same port, and the test failed on it).
      const old = status;
      status = await startStatus();
      await new Promise((resolve) => old.server.close(resolve));
      await register();
    },
  };
}

describe('followApiServers', () => {
  it('adds api instances checked on /healthz, follows a new status port, and routes around an unhealthy one', async () => {
    const keys = createKeyBuilder({ prefix: `fa${randomBytes(4).toString('hex')}:` });
    const apiPort = await getFreePort();
    const check = { intervalMs: 200, rise: 1, fall: 1 };
    const haproxy = await startHaproxy(
      renderHaproxy({
        statsSocket: 'placeholder.sock',
        frontend: { port: await getFreePort() },
        api: { frontend: { port: apiPort }, backend: { check } },
      }).replace(/^\s*stats socket placeholder\.sock.*\n/m, ''),
    );
    cleanups.push(() => haproxy.stop());
    const runtime = new HaproxyRuntime({ socketPath: haproxy.statsSocket });
    const a = await instance(keys, 'api-a');
    const b = await instance(keys, 'api-b');
    const follower = followApiServers({
      redis,
      keys,
      runtime,
      backend: 'api',
      check,
      resyncMs: 100,
      reconcileMs: 100,
    });
    cleanups.push(() => follower.close());

    const up = async () =>
      (await runtime.serverStats('api'))
        .filter((s) => s.status.startsWith('UP'))
        .map((s) => s.name)
        .sort();
    await waitFor(async () => (await up()).length === 2, { timeoutMs: 10_000, what: 'both instances UP' });
    const states = await runtime.serversState('api');
    expect(states.map((s) => [s.name, s.checkPort]).sort()).toEqual([
      ['api-a', a.statusPort()],
      ['api-b', b.statusPort()],
    ]);
    const answers = async (n: number) => {
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) seen.add(await (await fetch(`http://127.0.0.1:${apiPort}/`)).text());
      return [...seen].sort();
    };
    expect(await answers(10)).toEqual(['api-a', 'api-b']);

    // api-a restarted with its status server on another port: the check follows it.
    const before = a.statusPort();
    await a.restart();
    expect(a.statusPort()).not.toBe(before);
    await waitFor(
      async () =>
        (await runtime.serversState('api')).find((s) => s.name === 'api-a')?.checkPort === a.statusPort(),
      { timeoutMs: 10_000, what: "api-a's new check port in HAProxy" },
    );
    await waitFor(async () => (await up()).includes('api-a'), { timeoutMs: 10_000, what: 'api-a UP again' });

    // api-b says it is unhealthy: HAProxy takes it out of the traffic.
    b.state.healthy = false;
    await waitFor(async () => !(await up()).includes('api-b'), { timeoutMs: 10_000, what: 'api-b DOWN' });
    expect(await answers(10)).toEqual(['api-a']);
  });
});
