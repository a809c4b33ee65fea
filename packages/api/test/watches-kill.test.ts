import { randomBytes } from 'node:crypto';
import { EventType, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, appendEvent, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiProcess, call, spawnApi } from './helpers.js';
import { ADMIN_TOKEN, admin, startWebhook, waitForCount } from './watch-helpers.js';

// An api process delivering a watch is SIGKILLed while its webhook holds a request open. Another
// takes the watch when the lease lapses and sends that event again with the same idempotency
// key, then the rest: nothing lost, nothing else doubled, order kept.
//
// The other process starts once the first is dead. Run beside it, it took the watch whenever the
// first went a lease (1 s) without the CPU to renew it, and back: on a busy machine the lease
// went api-a → api-b → api-a → api-b before the kill (epochs 1-4 in their logs), and each take
// sent again what the last holder had sent but not yet recorded (event 0 three times). Those
// are duplicates the idempotency key is for, but not the ones this test is about; one process
// alone takes its own lapsed lease back from the cursor it recorded, sending nothing twice.

const prefix = `t${randomBytes(4).toString('hex')}:`;
const keys = createKeyBuilder({ prefix });
let server: RedisServer;
let redis: RedisClient;
const procs: ApiProcess[] = [];

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'api-watch-kill');
});

afterAll(async () => {
  for (const p of procs)
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  redis?.disconnect();
  await server?.stop();
});

function config(id: string) {
  return {
    id,
    redisUrl: server.url,
    keyPrefix: prefix,
    chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    adminToken: ADMIN_TOKEN,
    logLevel: 'warn',
    watches: { leaseMs: 1000, retryBaseMs: 50, retryMaxDelayMs: 200 },
  };
}

describe('watch delivery across api processes', () => {
  it('an api process killed mid-delivery loses nothing', async () => {
    const hook = await startWebhook();
    try {
      // The first attempt at event 3 is held open: the process sending it dies meanwhile.
      let held = false;
      hook.setAnswer((h) => {
        if (h.body.data.lastShareAt === 3 && !held) {
          held = true;
          return 'hold';
        }
        return 200;
      });
      const a = await spawnApi(config('api-a'));
      procs.push(a);
      // One registration, made through either process: the same watch.
      const register = (api: typeof a) =>
        call(`${api.ready.url}/v1/watches`, {
          method: 'POST',
          headers: admin,
          body: JSON.stringify({ pattern: 'worker.*', endpoint: `${hook.url}/kill` }),
        });
      const created = await register(a);
      expect(created.status).toBe(201);
      const id = created.body.id as string;

      const seqs: string[] = [];
      const produce = async (from: number, to: number) => {
        for (let i = from; i < to; i++)
          seqs.push(
            await appendEvent(
              redis,
              keys,
              EventType.WorkerOnline,
              { chain: 'ltc', account: 'acct', worker: 'acct.rig', lastShareAt: i },
              'ltc',
            ),
          );
      };
      await produce(0, 6);
      await waitFor(() => held, { what: 'the webhook holding event 3' });
      expect(await redis.hget(keys.watch(id), 'owner')).toMatch(/^api-a:/);
      a.child.kill('SIGKILL');
      expect((await a.exited).signal).toBe('SIGKILL');
      const b = await spawnApi(config('api-b'));
      procs.push(b);
      // the same registration through the other process: the same watch
      const again = await register(b);
      expect(again.status).toBe(200);
      expect(again.body.id).toBe(id);
      await produce(6, 10);

      const delivered = await waitForCount(hook.delivered, 10, '10 deliveries after the kill');
      expect(delivered.map((h) => h.body.seq)).toEqual(seqs);
      const keysSent = hook.hooks.map((h) => h.headers['idempotency-key']);
      // the held one went out twice with one key; no other event did
      expect(keysSent).toHaveLength(11);
      expect(new Set(keysSent).size).toBe(10);
      expect(keysSent.filter((k) => k === `${id}:ltc:${seqs[3]}`)).toHaveLength(2);
      expect(await redis.hget(keys.watch(id), 'owner')).toMatch(/^api-b:/);
      await waitFor(async () => (await redis.hget(keys.watch(id), 'c:ltc')) === seqs[9], {
        what: 'cursor at the last event',
      });
    } finally {
      await hook.close();
    }
    // two processes to start under load, then a lease to lapse
  }, 120_000);
});
