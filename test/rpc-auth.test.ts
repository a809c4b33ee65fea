import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSecretFile } from '@hashwire/core';
import { type JobManagerOptions, resolveOptions } from '@hashwire/jobmanager';
import { RpcErrorCode, type RpcMethods, type Share, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis, getService } from '@hashwire/registry';
import { reporterKeys } from '@hashwire/reporter';
import { type RpcClientCurve, createRpcClient, curveKeyPair } from '@hashwire/rpc';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ServiceProcess, killService, spawnService } from './service-process.js';

// Defect 3 of issue 14: anyone who could reach a reporter's RPC port could credit any account,
// and anyone (a web page included) could drain a service over HTTP. A reporter bound off
// loopback (127.0.0.2 stands in for a LAN address) must let in only the pool's CURVE keys, and
// POST /drain must need the admin token and refuse cross-site requests.

const CHAIN = 'litecoin-regtest';
const HOST = '127.0.0.2';
const ACCOUNT = 'rltc1qqurswpc8qurswpc8qurswpc8qurswpc8ntpxlg';
/** A request nobody answers is refused; the allowed client gets its answer in milliseconds. */
const REFUSED_AFTER_MS = 1_500;

let redisServer: RedisServer;
let redis: RedisClient;
let dir: string;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
  redis = connectRedis(redisServer.url, 'rpc-auth-test');
  dir = mkdtempSync(join(tmpdir(), 'hw-rpc-auth-'));
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  redis?.disconnect();
  await redisServer?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function share(): Share {
  return {
    shareId: randomUUID(),
    sessionId: 'sess-1',
    account: ACCOUNT,
    worker: 'rig1',
    jobId: '1a',
    extranonce1: 'f0000001',
    extranonce2: '00000000',
    ntime: '65a1b2c3',
    nonce: '0badcafe',
    version: '20000000',
    diff: 1,
    actualDiff: 1.5,
    result: 'accepted',
    ts: Date.now(),
    ip: '10.0.0.1',
  };
}

/** The pool's keys as `hashwire keys` makes them, and a reporter bin config using them off loopback. */
function securedReporter(prefix: string) {
  const stratum = curveKeyPair();
  const reporter = curveKeyPair();
  const secretKeyFile = join(dir, `${prefix}reporter.key`);
  writeSecretFile(secretKeyFile, reporter.secretKey);
  const adminTokenFile = join(dir, `${prefix}admin.token`);
  const adminToken = `admin-${randomUUID()}`;
  writeSecretFile(adminTokenFile, adminToken);
  const config = {
    id: `reporter-${prefix}`,
    chain: CHAIN,
    redisUrl: redisServer.url,
    keyPrefix: prefix,
    host: HOST,
    heartbeatIntervalMs: 250,
    blockPollMs: 3_600_000,
    logLevel: 'debug',
    curve: {
      publicKey: reporter.publicKey,
      secretKeyFile,
      allowedClientKeys: [stratum.publicKey, reporter.publicKey],
    },
    adminTokenFile,
  };
  return { config, stratum, reporter, adminToken };
}

async function start(config: Record<string, unknown>): Promise<ServiceProcess> {
  const service = await spawnService('reporter', config, { readyTimeoutMs: 20_000 });
  cleanups.push(() => killService(service));
  return service;
}

function client(endpoint: string, curve?: RpcClientCurve) {
  const c = createRpcClient<RpcMethods>(endpoint, {
    timeoutMs: REFUSED_AFTER_MS,
    heartbeatIntervalMs: 250,
    ...(curve ? { curve } : {}),
  });
  cleanups.push(() => c.close());
  return c;
}

/**
 * True when the request got no answer at all: its deadline passed (Timeout), or the client gave
 * the silent connection up first (Unavailable). Any reply, even an error, means it got through.
 */
async function neverAnswered(request: Promise<unknown>): Promise<boolean> {
  try {
    await request;
    return false;
  } catch (error) {
    const code = (error as { code?: number }).code;
    return code === RpcErrorCode.Timeout || code === RpcErrorCode.Unavailable;
  }
}

describe('a reporter bound off loopback', () => {
  it('refuses reporter.shares from a client without a key and from one with a key it does not allow, credits nothing, and credits the allowed key', async () => {
    const prefix = `auth${process.pid}a:`;
    const { config, stratum, reporter } = securedReporter(prefix);
    const service = await start(config);
    expect(service.ready).toMatchObject({ ready: true, curve: true });
    const endpoint = service.ready.endpoint as string;
    expect(endpoint).toMatch(new RegExp(`^tcp://${HOST.replaceAll('.', '\\.')}:\\d+$`));
    // Clients learn the server key from discovery.
    const info = await getService(redis, createKeyBuilder({ prefix }), 'reporter', config.id);
    expect(info?.curveKey).toBe(reporter.publicKey);

    const round = reporterKeys(createKeyBuilder({ prefix }), CHAIN).round;
    let seq = 0;
    const body = () => ({
      stratumId: 'forger',
      spoolId: 'forger-spool',
      chain: CHAIN,
      floor: 0,
      subs: [{ seq: seq++, id: `${randomUUID()}:0`, shares: [share()] }],
    });

    // No CURVE at all: the handshake never completes.
    const plain = client(endpoint);
    await expect(neverAnswered(plain.request('reporter.shares', body()))).resolves.toBe(true);
    // CURVE with the right server key, but a client key the pool does not have.
    const stranger = curveKeyPair();
    const forger = client(endpoint, { serverPublicKey: reporter.publicKey, ...stranger });
    await expect(neverAnswered(forger.request('reporter.shares', body()))).resolves.toBe(true);
    expect(service.logs()).toContain('rpc: client refused by CURVE policy');
    expect(await redis.hgetall(round)).toEqual({});
    expect(await redis.keys(`${prefix}acks:*`)).toEqual([]);

    // The pool's stratum key is let in and credited.
    const allowed = client(endpoint, { serverPublicKey: reporter.publicKey, ...stratum });
    const batch = body();
    await expect(allowed.request('reporter.shares', batch)).resolves.toEqual({
      subs: [{ seq: batch.subs[0]!.seq, status: 'credited', credited: 1 }],
    });
    expect(await redis.hgetall(round)).toEqual({ [ACCOUNT]: '1' });
  });

  it('refuses to start without CURVE keys, exit 1 with one line naming the setting', async () => {
    const { config } = securedReporter(`auth${process.pid}b:`);
    const { curve: _curve, ...withoutKeys } = config;
    await expect(start(withoutKeys)).rejects.toThrow(
      /exited \(1\) before ready: reporter: curve is required: host 127\.0\.0\.2 is not loopback/,
    );
    // A jobmanager is held to the same rule.
    expect(() =>
      resolveOptions({
        id: 'jm-1',
        coin: 'litecoin',
        network: 'regtest',
        daemons: [{ url: 'http://127.0.0.1:1/' }],
        payouts: [{ address: ACCOUNT }],
        host: HOST,
        redis,
        keys: createKeyBuilder(),
      } as JobManagerOptions),
    ).toThrow(/curve is required: host 127\.0\.0\.2 is not loopback/);
  });
});

describe('POST /drain of a real reporter', () => {
  it('refuses a drain without the token and a cross-site form post, keeps running, and drains with the token', async () => {
    const prefix = `auth${process.pid}c:`;
    const { config, adminToken } = securedReporter(prefix);
    // Its HTTP off loopback too (http.host): the token is what keeps /drain closed there.
    const service = await start({ ...config, httpHost: HOST });
    const info = await getService(redis, createKeyBuilder({ prefix }), 'reporter', config.id);
    const http = info?.http as string;
    expect(http).toMatch(/^http:\/\/127\.0\.0\.2:\d+$/);

    const noToken = await fetch(`${http}/drain`, { method: 'POST' });
    expect(noToken.status).toBe(401);
    const wrongToken = await fetch(`${http}/drain`, {
      method: 'POST',
      headers: { authorization: 'Bearer guessed' },
    });
    expect(wrongToken.status).toBe(401);
    // What a web page open in a browser on this host sends with a plain <form method=post>.
    const crossSite = await fetch(`${http}/drain`, {
      method: 'POST',
      headers: {
        origin: 'http://attacker.example',
        'sec-fetch-site': 'cross-site',
        'sec-fetch-mode': 'navigate',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'x=1',
    });
    expect(crossSite.status).toBe(403);

    // Still up and registered as up.
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    expect((await getService(redis, createKeyBuilder({ prefix }), 'reporter', config.id))?.state).toBe('up');
    expect(service.child.exitCode).toBeNull();

    const drained = await fetch(`${http}/drain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(drained.status).toBe(202);
    expect(await service.exited).toEqual({ code: 0, signal: null });
  });
});
