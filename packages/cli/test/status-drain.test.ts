import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '@hashwire/cli';
import { startStatusServer, writeSecretFile } from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { type ServiceRegistration, connectRedis, registerService } from '@hashwire/registry';
import { ShareForwarder, ShareSpool } from '@hashwire/stratum';
import { type RedisServer, getFreePort, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { serviceSpec } from '../src/demo-services.js';
import { type Supervised, Supervisor } from '../src/supervisor.js';
import { type CapturedOutput, captureOutput } from './capture-output.js';

let redisServer: RedisServer;
let output: CapturedOutput;
let prefixSeq = 0;
const dirs: string[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
});
afterAll(async () => {
  await redisServer?.stop();
});
beforeEach(() => {
  output = captureOutput();
});
afterEach(() => {
  vi.restoreAllMocks();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A key prefix of this test's own, and the flags that point the CLI at it. */
function scope() {
  const prefix = `st${process.pid}x${++prefixSeq}:`;
  return {
    prefix,
    keys: createKeyBuilder({ prefix }),
    flags: ['--redis', redisServer.url, '--prefix', prefix],
  };
}

describe('hashwire status', () => {
  it('lists the live services sorted by kind with their endpoints, state, load and version; --json the same', async () => {
    const { keys, flags } = scope();
    const redis = connectRedis(redisServer.url);
    const registrations: ServiceRegistration[] = [];
    try {
      const register = async (
        kind: string,
        id: string,
        extra: { rpc?: string; http?: string; api?: string; load?: number; sharesWire?: number },
      ) =>
        registrations.push(
          await registerService({
            redis,
            keys,
            kind,
            id,
            chain: 'litecoin-regtest',
            version: '0.1.0',
            ...extra,
          }),
        );
      await register('reporter', 'reporter-1', {
        rpc: 'tcp://127.0.0.1:28003',
        http: 'http://127.0.0.1:29003',
      });
      await register('stratum', 'stratum-2', { http: 'http://127.0.0.1:29002', load: 7 });
      await register('jobmanager', 'jm-1', { rpc: 'tcp://127.0.0.1:28001', http: 'http://127.0.0.1:29001' });
      await register('stratum', 'stratum-1', { http: 'http://127.0.0.1:29004', load: 3, sharesWire: 2 });
      await register('api', 'api-1', { http: 'http://127.0.0.1:29005', api: 'http://127.0.0.1:8080' });
      await registrations[1]?.update({ state: 'draining' });

      expect(await main(['status', ...flags])).toBe(0);
      const [header, ...rows] = output.out.trimEnd().split('\n');
      expect(header).toMatch(/^KIND +ID +CHAIN +ENDPOINTS +STATE +LOAD +VERSION +UPTIME +PID +QUARANTINE$/);
      expect(rows.map((r) => r.split(/ +/).slice(0, 2).join(' '))).toEqual([
        'jobmanager jm-1',
        'stratum stratum-1',
        'stratum stratum-2',
        'reporter reporter-1',
        'api api-1',
      ]);
      expect(rows[4]).toMatch(
        /^api +api-1 +litecoin-regtest +http=http:\/\/127\.0\.0\.1:29005 api=http:\/\/127\.0\.0\.1:8080 +up /,
      );
      expect(rows[0]).toMatch(
        new RegExp(
          `^jobmanager +jm-1 +litecoin-regtest +rpc=tcp://127\\.0\\.0\\.1:28001 http=http://127\\.0\\.0\\.1:29001 +up +0 +0\\.1\\.0 +\\d+s +${process.pid} +-$`,
        ),
      );
      expect(rows[2]).toMatch(
        /^stratum +stratum-2 +litecoin-regtest +http=http:\/\/127\.0\.0\.1:29002 +draining +7 /,
      );
      // Mid rolling upgrade: which side of the share wire change each stratum server and reporter is.
      expect(rows[1]).toMatch(/ +3 +0\.1\.0 \(shares wire 2\) +\d+s /);
      expect(rows[3]).toMatch(/ +0 +0\.1\.0 \(shares wire 1\) +\d+s /);

      output.out = '';
      expect(await main(['status', ...flags, '--json'])).toBe(0);
      const json = JSON.parse(output.out) as {
        kind: string;
        id: string;
        state: string;
        endpoints: Record<string, string>;
      }[];
      expect(json.map((s) => `${s.kind}/${s.id}/${s.state}`)).toEqual([
        'jobmanager/jm-1/up',
        'stratum/stratum-1/up',
        'stratum/stratum-2/draining',
        'reporter/reporter-1/up',
        'api/api-1/up',
      ]);
      expect(json[3]?.endpoints).toEqual({ rpc: 'tcp://127.0.0.1:28003', http: 'http://127.0.0.1:29003' });
    } finally {
      await Promise.all(registrations.map((r) => r.close()));
      redis.disconnect();
    }
  });

  it('reads Redis and the key prefix from --config, and names every bad key of a bad one', async () => {
    const { prefix, keys } = scope();
    const dir = mkdtempSync(join(tmpdir(), 'hw-status-'));
    dirs.push(dir);
    const redis = connectRedis(redisServer.url);
    const registration = await registerService({ redis, keys, kind: 'reporter', id: 'reporter-7' });
    try {
      const file = join(dir, 'pool.toml');
      writeFileSync(
        file,
        `[redis]\nurl = "${redisServer.url}"\nkeyPrefix = "${prefix}"\n\n[[chains]]\ndaemons = [{ url = "http://u:p@127.0.0.1:19443/" }]\npayouts = [{ address = "rltc1qgw09vvd3gh39xgfn8phfulaqj29yu5ju4urshd" }]\n`,
      );
      expect(await main(['status', '--config', file, '--json']), output.err).toBe(0);
      expect((JSON.parse(output.out) as { id: string }[]).map((s) => s.id)).toEqual(['reporter-7']);

      const bad = join(dir, 'bad.toml');
      writeFileSync(bad, '[redis]\nurl = "http://x"\nkeyprefix = "a:"\n');
      expect(await main(['status', '--config', bad])).toBe(1);
      expect(output.err).toMatch(/^hashwire status: the config is not valid:\n/);
      expect(output.err).toContain('redis.url:');
      expect(output.err).toMatch(/redis\.keyprefix: .*did you mean "keyPrefix"/);
    } finally {
      await registration.close();
      redis.disconnect();
    }
  });

  it("shows each stratum server's spool quarantine from its /stats, and where it is", async () => {
    const { keys, flags } = scope();
    const spoolDir = mkdtempSync(join(tmpdir(), 'hw-status-spool-'));
    dirs.push(spoolDir);
    const redis = connectRedis(redisServer.url);
    const spool = await ShareSpool.open({ dir: spoolDir });
    const forwarder = new ShareForwarder({ spool, redis, keys, stratumId: 'stratum-1', chain: 'ltc' });
    const share = {
      shareId: 's1',
      sessionId: 'sess',
      account: 'acct',
      worker: 'rig',
      jobId: 'a b',
      extranonce1: '00000001',
      extranonce2: '00000000',
      ntime: '65f1c2a0',
      nonce: '00000000',
      version: '20000000',
      diff: 1,
      actualDiff: 1,
      result: 'accepted' as const,
      ts: 1,
      ip: '127.0.0.1',
    };
    spool.quarantine({
      subBatchId: 'b1:4',
      batchId: 'b1',
      bucket: 4,
      reason: 'refused',
      message: 'shares[0].jobId must be a string without whitespace',
      refusals: [],
      stratumId: 'stratum-1',
      chain: 'ltc',
      quarantinedAt: 1,
      sealedAt: 1,
      firstSendAt: 1,
      shares: [share, { ...share, shareId: 's2' }],
    });
    const http = await startStatusServer({
      portRange: [0, 0],
      health: () => ({ ok: true }),
      stats: () => ({ forwarder: forwarder.stats() }),
    });
    const registration = await registerService({
      redis,
      keys,
      kind: 'stratum',
      id: 'stratum-1',
      http: http.url,
      chain: 'ltc',
    });
    // Nothing answers at its http endpoint: its quarantine is unknown, not 0.
    const silent = await registerService({
      redis,
      keys,
      kind: 'stratum',
      id: 'stratum-2',
      http: `http://127.0.0.1:${await getFreePort()}`,
      chain: 'ltc',
    });
    try {
      expect(await main(['status', ...flags])).toBe(0);
      const lines = output.out.trimEnd().split('\n');
      expect(lines[1]).toMatch(/^stratum +stratum-1 .* 1 \(2 shares\)$/);
      expect(lines[2]).toMatch(/^stratum +stratum-2 .* \?$/);
      expect(lines[3]).toBe(
        `quarantined share sub-batches (credited to no one until re-injected; see docs/operations.md, "Quarantined share batches"): stratum-1: ${join(spoolDir, 'quarantine')}`,
      );
      output.out = '';
      expect(await main(['status', ...flags, '--json'])).toBe(0);
      expect(JSON.parse(output.out)[0].quarantine).toEqual({
        subBatches: 1,
        shares: 2,
        dir: join(spoolDir, 'quarantine'),
      });
    } finally {
      await silent.close();
      await registration.close();
      await http.close();
      await forwarder.close();
      spool.close();
      redis.disconnect();
    }
  });

  it('--prometheus-sd writes a file_sd list of the services with a /metrics address, replacing the file whole', async () => {
    const { keys, flags } = scope();
    const redis = connectRedis(redisServer.url);
    const dir = mkdtempSync(join(tmpdir(), 'hw-sd-'));
    dirs.push(dir);
    const file = join(dir, 'targets.json');
    const registrations: ServiceRegistration[] = [];
    try {
      const register = async (
        kind: string,
        id: string,
        http: string,
        measureLoad?: () => Record<string, number>,
        chain = 'ltc',
      ) =>
        registrations.push(
          await registerService({
            redis,
            keys,
            kind,
            id,
            chain,
            http,
            ...(measureLoad ? { measureLoad } : {}),
          }),
        );
      await register('reporter', 'rep-1', 'http://10.0.0.7:29003', () => ({
        batchesPerS: 2.5,
        sharesPerS: 1250,
      }));
      await register('stratum', 'st-1', 'http://10.0.0.5:29001', () => ({ sessions: 40, connections: 41 }));
      // Registered without an HTTP endpoint: nothing to scrape.
      await register('jobmanager', 'jm-1', '');
      // The api serves every chain: no chain of its own.
      await register('api', 'api-1', 'http://10.0.0.8:29005', () => ({ requestsPerS: 12.5 }), '');
      writeFileSync(file, 'an old list');

      expect(await main(['status', ...flags, '--prometheus-sd', file])).toBe(0);
      expect(output.out).toBe('');
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual([
        { targets: ['10.0.0.5:29001'], labels: { service: 'stratum', chain: 'ltc', id: 'st-1' } },
        { targets: ['10.0.0.7:29003'], labels: { service: 'reporter', chain: 'ltc', id: 'rep-1' } },
        { targets: ['10.0.0.8:29005'], labels: { service: 'api', chain: '', id: 'api-1' } },
      ]);
      expect(readdirSync(dir)).toEqual(['targets.json']);

      expect(await main(['status', ...flags, '--prometheus-sd', '-'])).toBe(0);
      expect(JSON.parse(output.out)).toHaveLength(3);

      // The LOAD column: each kind's figures with their units.
      output.out = '';
      expect(await main(['status', ...flags])).toBe(0);
      const rows = output.out.split('\n');
      expect(rows.find((r) => r.startsWith('stratum '))).toMatch(/ up +40 sessions, 41 conns +0\.0\.0 /);
      expect(rows.find((r) => r.startsWith('reporter '))).toMatch(
        / up +2\.5 batches\/s, 1250 shares\/s +0\.0\.0 /,
      );
      expect(rows.find((r) => r.startsWith('api '))).toMatch(
        /^api +api-1 +- +http=\S+ +up +12\.5 req\/s +0\.0\.0 /,
      );

      output.err = '';
      expect(await main(['status', ...flags, '--prometheus-sd', join(dir, 'missing', 'x.json')])).toBe(1);
      expect(output.err).toMatch(/^hashwire status: cannot write .*missing\/x\.json: ENOENT/);
      expect(await main(['status', ...flags, '--json', '--prometheus-sd', file])).toBe(2);
      expect(output.err).toMatch(/give --json or --prometheus-sd, not both/);
    } finally {
      await Promise.all(registrations.map((r) => r.close()));
      redis.disconnect();
    }
  });

  it('says so when nothing is registered', async () => {
    expect(await main(['status', ...scope().flags])).toBe(0);
    expect(output.out).toBe('no live services in the registry\n');
  });

  it('exits 1 with one line naming the URL when Redis is unreachable', async () => {
    const url = `redis://127.0.0.1:${await getFreePort()}`;
    expect(await main(['status', '--redis', url])).toBe(1);
    expect(output.err).toMatch(
      new RegExp(`^hashwire status: cannot reach Redis at ${url}: .*ECONNREFUSED.*\\n$`),
    );
    expect(output.out).toBe('');
  });
});

describe('hashwire drain', () => {
  it('refuses to drain without the admin token or with a wrong one, then drains a real reporter with it, follows it until it left the registry, and it exits 0', async () => {
    const { prefix, flags } = scope();
    const logDir = mkdtempSync(join(tmpdir(), 'hw-drain-'));
    dirs.push(logDir);
    const tokenFile = join(logDir, 'admin.token');
    writeSecretFile(tokenFile, 'the-right-admin-token-for-this-test');
    const wrongFile = join(logDir, 'wrong.token');
    writeSecretFile(wrongFile, 'a-wrong-admin-token-for-this-test');
    const supervisor = new Supervisor({ logDir, write: () => {} });
    let reporter: Supervised | undefined;
    try {
      const config = {
        id: 'reporter-1',
        chain: 'litecoin-regtest',
        redisUrl: redisServer.url,
        keyPrefix: prefix,
        adminTokenFile: tokenFile,
      };
      reporter = await supervisor.start(
        serviceSpec('reporter', 'reporter-1', config, { readyTimeoutMs: 20_000, restart: false }),
      );
      // No token (none given, no var/admin.token here), then a wrong one: refused, and it keeps running.
      expect(await main(['drain', 'reporter-1', ...flags])).toBe(1);
      expect(output.err).toMatch(
        /^hashwire drain: http:\/\/127\.0\.0\.1:\d+\/drain answered 401: .*admin token required.*give --token-file FILE/m,
      );
      expect(await main(['drain', 'reporter-1', ...flags, '--token-file', wrongFile])).toBe(1);
      expect(output.err).toMatch(/answered 401: .*is --token-file the token of that host/);
      output.out = '';
      expect(await main(['status', ...flags])).toBe(0);
      expect(output.out).toMatch(/^reporter +reporter-1 .* up /m);
      expect(reporter.running).toBe(true);

      output.out = '';
      expect(await main(['drain', 'reporter-1', ...flags, '--token-file', tokenFile])).toBe(0);
      expect(output.out).toMatch(/^draining reporter reporter-1 \(pid \d+, http:\/\/127\.0\.0\.1:\d+\)$/m);
      expect(output.out).toContain(
        'reporter-1: drain started (POST /drain → 202); following it in the registry',
      );
      // An idle reporter drains in a few milliseconds: its `draining` state may come and go
      // between two reads, so only its leaving is certain here (the up test sees a stratum drain).
      expect(output.out).toMatch(/^reporter-1: gone from the registry after [\d.]+ s$/m);
      expect(await reporter.exited).toEqual({ code: 0, signal: null });

      output.out = '';
      expect(await main(['status', ...flags])).toBe(0);
      expect(output.out).toBe('no live services in the registry\n');
    } finally {
      await reporter?.stop(5_000);
    }
  });

  it('refuses an unknown id with exit 1, listing the live ids', async () => {
    const { keys, flags } = scope();
    const redis = connectRedis(redisServer.url);
    const registration = await registerService({ redis, keys, kind: 'stratum', id: 'stratum-1' });
    try {
      expect(await main(['drain', 'stratum-9', ...flags])).toBe(1);
      expect(output.err).toBe('hashwire drain: no live service "stratum-9"; live: stratum-1\n');
    } finally {
      await registration.close();
      redis.disconnect();
    }
  });

  it('refuses a bad command line with a usage error', async () => {
    await expect(main(['drain'])).rejects.toThrow('drain takes one service id, got 0');
    await expect(main(['drain', 'x', '--timeout', 'never'])).rejects.toThrow(
      '--timeout must be a number of seconds above 0, got "never"',
    );
  });
});
