// A rolling upgrade across the share wire change (issue 16's reporter.shares): a stratum server
// of share wire 2 sends only to reporters that advertise it. A reporter of the release before
// (no `sharesWire` in its registry record) would refuse the new requests as malformed and the
// sub-batches would end in quarantine; instead it is left out of the ring, the batches wait in
// the spool with a backlog warning saying why, and drain into an upgraded reporter (real,
// crediting in real Redis) the moment one registers: delayed, never quarantined nor lost.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@hashwire/core';
import {
  type KeyBuilder,
  RpcErrorCode,
  type RpcMethods,
  SHARES_WIRE,
  type Share,
  createKeyBuilder,
} from '@hashwire/protocol';
import { type RedisClient, connectRedis, registerService } from '@hashwire/registry';
import { createReporter, readRound } from '@hashwire/reporter';
import { RpcError, createRpcServer } from '@hashwire/rpc';
import { type BacklogEvent, ShareForwarder, ShareSpool } from '@hashwire/stratum';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const CHAIN = 'ltc';
const HEARTBEAT_MS = 200;
const WAIT_MS = 30_000;

let redisServer: RedisServer;
let redis: RedisClient;
let keys: KeyBuilder;
let dir: string;
const cleanup: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
  redis = connectRedis(redisServer.url);
});
afterAll(async () => {
  redis?.disconnect();
  await redisServer?.stop();
});
beforeEach(() => {
  keys = createKeyBuilder({ prefix: `w${randomBytes(4).toString('hex')}:` });
  dir = mkdtempSync(join(tmpdir(), 'hw-wire-'));
});
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
function share(account: string): Share {
  seq++;
  return {
    shareId: `sh${seq}-${randomUUID()}`,
    sessionId: 'sess',
    account,
    worker: `rig${seq % 3}`,
    jobId: 'j1',
    extranonce1: '00000001',
    extranonce2: seq.toString(16).padStart(8, '0'),
    ntime: '65f1c2a0',
    nonce: randomBytes(4).toString('hex'),
    version: '20000000',
    diff: 1,
    actualDiff: 1.5,
    result: 'accepted',
    ts: Date.now(),
    ip: '127.0.0.1',
  };
}

/**
 * A reporter of the release before share wire 2, as the registry and the wire see it: registered
 * without `sharesWire`, and refusing today's request as malformed, as its validator did (no
 * `batchId`). Records every request it is sent.
 */
async function startWire1Reporter(id: string): Promise<{ received: unknown[] }> {
  const received: unknown[] = [];
  const server = await createRpcServer<RpcMethods>({
    heartbeatIntervalMs: HEARTBEAT_MS,
    handlers: {
      'reporter.shares': (body) => {
        received.push(body);
        throw new RpcError(RpcErrorCode.BadRequest, 'batch.batchId must be 1–128 characters');
      },
    },
  });
  const registration = await registerService({
    redis,
    keys,
    kind: 'reporter',
    id,
    rpc: server.endpoint,
    chain: CHAIN,
  });
  cleanup.push(async () => {
    await registration.close();
    await server.close();
  });
  return { received };
}

/** Seals `count` batches of `accounts` accounts × 3 shares; returns every share sealed. */
async function sealBatches(spool: ShareSpool, count: number, accounts: number): Promise<Share[]> {
  const all: Share[] = [];
  for (let b = 0; b < count; b++) {
    const batch: Share[] = [];
    for (let a = 0; a < accounts; a++) for (let n = 0; n < 3; n++) batch.push(share(`acct${a}`));
    await Promise.all(batch.map((s) => spool.append(s)));
    if (!spool.seal()) throw new Error('nothing sealed');
    all.push(...batch);
  }
  return all;
}

function expectedRound(list: Share[]): Record<string, number> {
  const round: Record<string, number> = {};
  for (const s of list) round[s.account] = (round[s.account] ?? 0) + s.diff;
  return round;
}

function idle(forwarder: ShareForwarder): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    forwarder.whenIdle(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the spool never drained: ${JSON.stringify(forwarder.stats())}`)),
        WAIT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

describe('a stratum server of share wire 2 during a rolling upgrade of the reporters', () => {
  it('sends nothing to a reporter of the release before: batches wait in the spool with the reason, then drain into an upgraded reporter, each share credited once, none quarantined', async () => {
    const old = await startWire1Reporter('rep-old');
    const lines: { msg?: string; reporterId?: string }[] = [];
    const logger = createLogger({
      name: 'forwarder-test',
      level: 'info',
      destination: { write: (line: string) => lines.push(JSON.parse(line)) },
    });
    const spool = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
    cleanup.push(() => spool.close());
    const forwarder = new ShareForwarder({
      spool,
      redis,
      keys,
      stratumId: 'st-1',
      chain: CHAIN,
      logger,
      heartbeatIntervalMs: HEARTBEAT_MS,
      reconcileMs: 100,
      requestTimeoutMs: 10_000,
      retryDelayMs: 20,
      maxRetryDelayMs: 200,
      backlogWarnBatches: 3,
    });
    cleanup.push(() => forwarder.close());
    const backlog: BacklogEvent[] = [];
    forwarder.on('backlog', (e) => backlog.push(e));
    let quarantined = 0;
    forwarder.on('quarantined', () => quarantined++);
    await forwarder.start();

    // Only the old reporter: it is known, but not in the ring.
    expect(forwarder.stats()).toMatchObject({ reporters: 0, reportersOtherWire: 1 });
    const waiting = await sealBatches(spool, 4, 5);
    expect(backlog.map((e) => `${e.reason}@${e.batches}`)).toEqual(['no-reporter@1', 'no-reporter@3']);
    for (const e of backlog)
      expect(e.why).toBe(
        'no reporter speaks share wire 2 — upgrade the reporters (1 registered speak an older wire)',
      );
    const warned = lines.filter((l) => l.msg === 'share batches are piling up in the spool');
    expect(warned).toHaveLength(2);
    expect(warned[0]).toMatchObject({
      why: expect.stringMatching(/no reporter speaks share wire 2 — upgrade the reporters/),
    });
    expect(forwarder.stats()).toMatchObject({ backlogBatches: 4, requests: 0, quarantinedSubBatches: 0 });

    // An upgraded reporter registers: the backlog drains into it alone.
    const upgraded = await createReporter({
      id: 'rep-new',
      chain: CHAIN,
      redis,
      keys,
      logger: createLogger({ name: 'reporter-test', level: 'silent' }),
      heartbeatIntervalMs: HEARTBEAT_MS,
      blockPollMs: 3_600_000,
    });
    cleanup.push(() => upgraded.close());
    const cleared = new Promise<void>((resolve) => forwarder.once('backlogCleared', () => resolve()));
    await upgraded.start();
    await idle(forwarder);
    await cleared;
    expect(forwarder.currentRing().servers).toEqual(['rep-new']);
    expect(await readRound(redis, keys, CHAIN)).toEqual(expectedRound(waiting));
    expect(upgraded.stats()).toMatchObject({ credited: waiting.length, batches: { duplicate: 0 } });

    // Both registered: new batches go to the upgraded reporter only.
    const later = await sealBatches(spool, 2, 5);
    await idle(forwarder);
    const all = [...waiting, ...later];
    expect(await readRound(redis, keys, CHAIN)).toEqual(expectedRound(all));
    expect(upgraded.stats().credited).toBe(all.length);
    expect(forwarder.stats()).toMatchObject({
      reporters: 1,
      reportersOtherWire: 1,
      backlogBatches: 0,
      credited: all.length,
      malformedRefusals: 0,
      quarantinedSubBatches: 0,
    });

    // Never a request to the old reporter, never a share in quarantine, and it was named once.
    expect(old.received).toEqual([]);
    expect(quarantined).toBe(0);
    const quarantineDir = join(dir, 'quarantine');
    expect(existsSync(quarantineDir) ? readdirSync(quarantineDir) : []).toEqual([]);
    const leftOut = lines.filter((l) => /^reporter left out/.test(l.msg ?? ''));
    expect(leftOut.map((l) => l.reporterId)).toEqual(['rep-old']);
  });
});
