import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadPoolConfig } from '@hashwire/core';
import { type JobManagerOptions, resolveOptions } from '@hashwire/jobmanager';
import { createKeyBuilder } from '@hashwire/protocol';
import type { RedisClient, ServiceInfo } from '@hashwire/registry';
import { curveKeyPair } from '@hashwire/rpc';
import { afterAll, describe, expect, it } from 'vitest';
import { systemdRenderInput } from '../src/deploy-render.js';
import {
  checkPoolSecrets,
  circusRenderInput,
  haproxyBackends,
  haproxyRenderInput,
  poolRedis,
  redisLabel,
  serviceConfigs,
} from '../src/pool.js';

const REGTEST_ADDRESS = 'rltc1qqurswpc8qurswpc8qurswpc8qurswpc8ntpxlg';
const MAIN_ADDRESS = 'ltc1qpyysjzgfpyysjzgfpyysjzgfpyysjzgf0asqjy';

const dir = mkdtempSync(join(tmpdir(), 'hashwire-pool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TWO_CHAINS = `
[redis]
url = "redis://:secret@10.0.0.5:6379/2"
keyPrefix = "pool1:"

[[chains]]
daemons = [{ url = "http://rpc:pw@127.0.0.1:19443/" }, { url = "http://127.0.0.1:19543/", cookieFile = "ltc2/.cookie" }]
payouts = [{ address = "${REGTEST_ADDRESS}" }]
blocknotify = true
longpoll = false

[[chains]]
id = "ltc"
network = "main"
daemons = [{ url = "http://10.0.0.9:9332/", user = "pool", password = "pw", longpollTimeoutMs = 60000 }]
payouts = [{ address = "${MAIN_ADDRESS}", valueSat = 1000 }, { address = "${MAIN_ADDRESS}" }]
poolTag = "/ltc-pool/"
confirmations = 6
bind = ":3335"

[jobmanager]
count = 1

[stratum]
count = 2
trustedProxies = ["10.0.0.0/8"]
[stratum.vardiff]
targetSharesPerMin = 20

[reporter]
count = 1

[statsd]
enabled = true
host = "10.0.0.7"
`;

function twoChains(extra: string[] = []) {
  const file = join(dir, 'two-chains.toml');
  writeFileSync(file, TWO_CHAINS);
  return loadPoolConfig({ file, env: {}, sets: extra });
}

describe('serviceConfigs', () => {
  it('derives every instance of a two-chain pool, numbered chain by chain with stable ids', () => {
    const services = serviceConfigs(twoChains());
    expect(services.map((s) => [s.kind, s.instance, s.id, s.chain])).toEqual([
      ['jobmanager', 1, 'jobmanager-litecoin-regtest-1', 'litecoin-regtest'],
      ['jobmanager', 2, 'jobmanager-ltc-1', 'ltc'],
      ['stratum', 1, 'stratum-litecoin-regtest-1', 'litecoin-regtest'],
      ['stratum', 2, 'stratum-litecoin-regtest-2', 'litecoin-regtest'],
      ['stratum', 3, 'stratum-ltc-1', 'ltc'],
      ['stratum', 4, 'stratum-ltc-2', 'ltc'],
      ['reporter', 1, 'reporter-litecoin-regtest-1', 'litecoin-regtest'],
      ['reporter', 2, 'reporter-ltc-1', 'ltc'],
      // The api serves every chain: api.count instances for the whole pool.
      ['api', 1, 'api-1', ''],
    ]);
    expect(
      serviceConfigs(twoChains(['api.count=3']))
        .filter((s) => s.kind === 'api')
        .map((s) => s.id),
    ).toEqual(['api-1', 'api-2', 'api-3']);
    // More servers later: the existing instances keep their ids (and so their spools).
    const scaled = serviceConfigs(twoChains(['stratum.count=3'])).filter((s) => s.kind === 'stratum');
    expect(scaled.map((s) => s.id)).toEqual([
      'stratum-litecoin-regtest-1',
      'stratum-litecoin-regtest-2',
      'stratum-litecoin-regtest-3',
      'stratum-ltc-1',
      'stratum-ltc-2',
      'stratum-ltc-3',
    ]);
  });

  it("gives each bin the options it reads, from the chain's and the pool's sections", () => {
    const byId = new Map(serviceConfigs(twoChains()).map((s) => [s.id, s.config]));
    const statsd = { host: '10.0.0.7', port: 8125, prefix: 'hashwire.', tagFormat: 'datadog', tags: {} };
    const jm = byId.get('jobmanager-ltc-1');
    expect(jm).toEqual({
      id: 'jobmanager-ltc-1',
      coin: 'litecoin',
      network: 'main',
      chain: 'ltc',
      daemons: [
        {
          url: 'http://10.0.0.9:9332/',
          user: 'pool',
          password: 'pw',
          timeoutMs: 30_000,
          longpollTimeoutMs: 60_000,
          maxSockets: 4,
        },
      ],
      payouts: [{ address: MAIN_ADDRESS, valueSat: 1000 }, { address: MAIN_ADDRESS }],
      poolTag: '/ltc-pool/',
      extranonce1Size: 4,
      extranonce2Size: 4,
      redisUrl: 'redis://:secret@10.0.0.5:6379/2',
      keyPrefix: 'pool1:',
      host: '127.0.0.1',
      rpcPortRange: [28000, 28999],
      heartbeatIntervalMs: 1000,
      leaseTtlMs: 2000,
      serviceTtlMs: 60_000,
      pollIntervalMs: 500,
      refreshIntervalMs: 30_000,
      templateGraceMs: 20_000,
      jobTtlMs: 900_000,
      blocknotify: false,
      longpoll: true,
      zmqHashblock: [],
      logLevel: 'info',
      httpPortRange: [29000, 29999],
      httpHost: '127.0.0.1',
      adminTokenFile: join(dir, 'var/admin.token'),
      statsd,
    });
    // The jobmanager's own checks take it as it is.
    expect(() =>
      resolveOptions({
        ...(jm as unknown as JobManagerOptions),
        redis: {} as RedisClient,
        keys: createKeyBuilder(),
      }),
    ).not.toThrow();
    expect(byId.get('jobmanager-litecoin-regtest-1')).toMatchObject({
      blocknotify: true,
      longpoll: false,
      daemons: [
        { url: 'http://rpc:pw@127.0.0.1:19443/' },
        { url: 'http://127.0.0.1:19543/', cookieFile: join(dir, 'ltc2/.cookie') },
      ],
    });

    expect(byId.get('stratum-ltc-2')).toMatchObject({
      id: 'stratum-ltc-2',
      chain: 'ltc',
      coin: 'litecoin',
      network: 'main',
      redisUrl: 'redis://:secret@10.0.0.5:6379/2',
      keyPrefix: 'pool1:',
      spoolDir: join(dir, 'var/spool/stratum-ltc-2'),
      host: '0.0.0.0',
      port: [23000, 23999],
      advertiseHost: '127.0.0.1',
      trustedProxies: ['10.0.0.0/8'],
      vardiff: expect.objectContaining({ targetSharesPerMin: 20, initialDifficulty: 16 }),
      drain: { waveSize: 500, waveIntervalMs: 1000, graceMs: 30_000 },
      daemonLoss: { graceMs: 10_000 },
      jobFeed: { heartbeatIntervalMs: 1000, daemonGraceMs: 60_000, maxJobAgeMs: 90_000 },
      forwarder: expect.objectContaining({ heartbeatIntervalMs: 1000, requestTimeoutMs: 5000 }),
      ring: { buckets: 100, bucketsPerAccount: 3, virtualNodes: 1024 },
      flushTimeoutMs: 30_000,
      logLevel: 'info',
      statsd,
    });
    const spools = serviceConfigs(twoChains())
      .filter((s) => s.kind === 'stratum')
      .map((s) => s.config.spoolDir);
    expect(new Set(spools).size).toBe(4);

    expect(byId.get('reporter-ltc-1')).toMatchObject({
      id: 'reporter-ltc-1',
      chain: 'ltc',
      redisUrl: 'redis://:secret@10.0.0.5:6379/2',
      confirmations: 6,
      daemons: [expect.objectContaining({ url: 'http://10.0.0.9:9332/' })],
      rpcPortRange: [28000, 28999],
      logLevel: 'info',
    });

    // The api bin's options: every chain with its algorithm, its own port range, the pool's Redis.
    expect(byId.get('api-1')).toEqual({
      id: 'api-1',
      chains: [
        { chain: 'litecoin-regtest', algorithm: 'scrypt', payments: null },
        { chain: 'ltc', algorithm: 'scrypt', payments: null },
      ],
      redisUrl: 'redis://:secret@10.0.0.5:6379/2',
      keyPrefix: 'pool1:',
      host: '127.0.0.1',
      port: [24000, 24999],
      advertiseHost: '127.0.0.1',
      openGroups: false,
      trustProxy: ['127.0.0.1', '::1'],
      maxBodyBytes: 65_536,
      tokenCacheMs: 5000,
      rateLimit: { max: 600, windowMs: 60_000 },
      watches: {
        deliver: true,
        retryWindowMs: 14_400_000,
        retryBaseMs: 1000,
        retryMaxDelayMs: 600_000,
        leaseMs: 10_000,
        deliveryTimeoutMs: 10_000,
        outboxMaxLen: 10_000,
      },
      stream: {
        maxBufferedBytes: 4_194_304,
        maxPendingEvents: 10_000,
        maxTopicsPerConnection: 1000,
        checkpointMs: 1000,
        pingMs: 30_000,
        maxMessageBytes: 65_536,
      },
      serviceTtlMs: 60_000,
      httpPortRange: [29000, 29999],
      httpHost: '127.0.0.1',
      adminTokenFile: join(dir, 'var/admin.token'),
      // GET /v1/haproxy reads HAProxy's servers there.
      haproxyStatsSocket: join(dir, 'var/haproxy.sock'),
      // GET /v1/connect: each chain's public stratum address at HAProxy, for the dashboard.
      stratumFronts: [
        { chain: 'litecoin-regtest', scheme: 'stratum+tcp', bind: ':3333' },
        { chain: 'ltc', scheme: 'stratum+tcp', bind: ':3335' },
      ],
      logLevel: 'info',
      statsd,
    });
  });

  it('refuses an api.bind on a stratum port', () => {
    expect(() => twoChains(['api.bind=:3335'])).toThrow(
      /api\.bind: port 3335 is already chains\[1\]\.bind's/,
    );
    expect(() => twoChains(['api.bind=:3335', 'api.count=0'])).not.toThrow();
  });

  it("gives the RPC servers their kind's CURVE keys and the pool's keys as allow list, stratum servers their own pair", () => {
    const [jm, st, rp, old] = [curveKeyPair(), curveKeyPair(), curveKeyPair(), curveKeyPair()];
    const pool = twoChains([
      'rpc.host=10.0.0.3',
      `rpc.curve.jobmanager.publicKey=${jm.publicKey}`,
      'rpc.curve.jobmanager.secretKeyFile=keys/jobmanager.key',
      `rpc.curve.stratum.publicKey=${st.publicKey}`,
      'rpc.curve.stratum.secretKeyFile=keys/stratum.key',
      `rpc.curve.reporter.publicKey=${rp.publicKey}`,
      `rpc.curve.allowedClientKeys=["${old.publicKey}"]`,
    ]);
    const byId = new Map(serviceConfigs(pool).map((s) => [s.id, s.config]));
    const allowed = [jm.publicKey, st.publicKey, rp.publicKey, old.publicKey];
    expect(byId.get('jobmanager-ltc-1')).toMatchObject({
      host: '10.0.0.3',
      curve: {
        publicKey: jm.publicKey,
        secretKeyFile: join(dir, 'keys/jobmanager.key'),
        allowedClientKeys: allowed,
      },
    });
    expect(byId.get('stratum-ltc-1')?.curve).toEqual({
      publicKey: st.publicKey,
      secretKeyFile: join(dir, 'keys/stratum.key'),
    });
    expect(byId.get('reporter-ltc-1')?.curve).toEqual({
      publicKey: rp.publicKey,
      allowedClientKeys: allowed,
    });
    // This host may run jobmanagers and stratum servers; a reporter needs its secret key file.
    expect(checkPoolSecrets(pool, ['jobmanager', 'stratum'])).toEqual([]);
    expect(checkPoolSecrets(pool, ['reporter'])).toEqual([
      { path: 'rpc.curve.reporter.secretKeyFile', message: expect.stringContaining('reporter.key') },
    ]);
  });

  it('refuses rpc.host off loopback without rpc.curve, naming the setting', () => {
    expect(() => twoChains(['rpc.host=10.0.0.3'])).toThrow(
      /rpc\.curve: needed: rpc\.host 10\.0\.0\.3 is not loopback/,
    );
    expect(() => twoChains(['rpc.host=127.0.0.2'])).toThrow(/rpc\.curve: needed/);
    expect(() => twoChains(['rpc.host=::1'])).not.toThrow();
  });

  it('gives a SOLO chain its fee to the jobmanagers and solo to the stratum servers, and refuses a fee without an address', () => {
    const solo = ['chains.0.payments.scheme=solo', 'chains.0.payments.feePercent=1.5'];
    const byId = new Map(
      serviceConfigs(twoChains([...solo, `chains.0.payments.feeAddress=${REGTEST_ADDRESS}`])).map((s) => [
        s.id,
        s.config,
      ]),
    );
    const jm = byId.get('jobmanager-litecoin-regtest-1')!;
    expect(jm.solo).toEqual({ feePercent: 1.5, feeAddress: REGTEST_ADDRESS });
    expect(
      resolveOptions({
        ...(jm as unknown as JobManagerOptions),
        redis: {} as RedisClient,
        keys: createKeyBuilder(),
      }).solo,
    ).toEqual({
      feeBasisPoints: 150,
      feeAddress: REGTEST_ADDRESS,
    });
    expect(byId.get('stratum-litecoin-regtest-1')!.solo).toBe(true);
    // The other chain pays as before: no SOLO fields.
    expect(byId.get('jobmanager-ltc-1')!.solo).toBeUndefined();
    expect(byId.get('stratum-ltc-1')!.solo).toBeUndefined();

    for (const [sets, message] of [
      [solo, 'SOLO pays the pool fee in the coinbase'],
      [[...solo, `chains.0.payments.feeAddress=${MAIN_ADDRESS}`], 'expected litecoin regtest'],
    ] as const) {
      let error: unknown;
      try {
        serviceConfigs(twoChains([...sets]));
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues).toEqual([
        { path: 'chains[0].payments.feeAddress', message: expect.stringContaining(message) },
      ]);
    }
  });

  it('refuses a payout address of another chain, naming where it is', () => {
    const pool = twoChains([`chains.1.payouts.1.address=${REGTEST_ADDRESS}`]);
    let error: unknown;
    try {
      serviceConfigs(pool);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      { path: 'chains[1].payouts[1].address', message: expect.stringContaining('expected litecoin main') },
    ]);
  });

  it('maps Sentinel and Cluster as connectRedis takes them; the services get Sentinel, and Cluster is refused', () => {
    const file = join(dir, 'sentinel.toml');
    writeFileSync(file, TWO_CHAINS.replace('url = "redis://:secret@10.0.0.5:6379/2"', ''));
    const sentinel = loadPoolConfig({
      file,
      env: {},
      sets: [
        'redis.sentinel.name=pool',
        'redis.sentinel.sentinels[0].host=10.0.0.1',
        'redis.sentinel.sentinels[0].port=26379',
      ],
    });
    expect(poolRedis(sentinel)).toEqual({ name: 'pool', sentinels: [{ host: '10.0.0.1', port: 26379 }] });
    for (const service of serviceConfigs(sentinel)) {
      expect(service.config.redis, service.id).toEqual(poolRedis(sentinel));
      expect(service.config.redisUrl, service.id).toBeUndefined();
    }
    const cluster = loadPoolConfig({
      file,
      env: {},
      sets: [
        'redis.cluster.nodes[0].host=10.0.0.2',
        'redis.cluster.nodes[0].port=7000',
        'redis.cluster.password=pw',
      ],
    });
    expect(poolRedis(cluster)).toEqual({
      cluster: [{ host: '10.0.0.2', port: 7000 }],
      options: { redisOptions: { password: 'pw' } },
    });
    expect(redisLabel(cluster)).toBe('cluster 10.0.0.2:7000');
    // Every service gets the Cluster's nodes (a chain's keys share one slot; see docs/architecture.md).
    for (const service of serviceConfigs(cluster)) {
      expect(service.config.redis, service.id).toEqual(poolRedis(cluster));
      expect(service.config.redisUrl, service.id).toBeUndefined();
    }
  });
});

function stratumService(id: string, port: number, extra: Partial<ServiceInfo> = {}): ServiceInfo {
  return {
    kind: 'stratum',
    id,
    rpc: '',
    http: 'http://127.0.0.1:29001',
    pid: 1,
    version: '0.1.0',
    chain: 'litecoin-regtest',
    state: 'up',
    load: 0,
    startedAt: 0,
    stratum: `127.0.0.1:${port}`,
    ...extra,
  };
}

function apiService(id: string, api: string, extra: Partial<ServiceInfo> = {}): ServiceInfo {
  const { stratum: _stratum, ...service } = stratumService(id, 0, { kind: 'api', chain: '', api, ...extra });
  return service;
}

describe('render inputs', () => {
  it("maps the haproxy section and each chain's live stratum servers to its own frontend and backend", () => {
    const pool = twoChains([
      'haproxy.bind=0.0.0.0:3333',
      'haproxy.tls.certFile=certs/pool.pem',
      'haproxy.statsBind=127.0.0.1:8404',
      'chains[1].tlsBind=:3336',
    ]);
    const input = haproxyRenderInput(pool, [
      stratumService('stratum-litecoin-regtest-1', 23001, { agent: '127.0.0.1:24001' }),
      stratumService('stratum-litecoin-regtest-2', 23002, { state: 'draining' }),
      stratumService('stratum-ltc-1', 23003, { chain: 'ltc' }),
      // api instances: in the api backend, checked on their status server; a draining one is left out.
      apiService('api-1', 'http://127.0.0.1:24000'),
      apiService('api-2', 'http://10.0.0.4:24001', { http: 'http://127.0.0.1:29009' }),
      apiService('api-3', 'http://127.0.0.1:24002', { state: 'draining' }),
    ]);
    const check = { intervalMs: 2000, rise: 2, fall: 3, agentIntervalMs: 2000 };
    expect(input).toEqual({
      statsSocket: join(dir, 'var/haproxy.sock'),
      frontend: {
        name: 'stratum_in',
        bind: '0.0.0.0',
        port: 3333,
        tls: { bind: '', port: 3334, certificate: join(dir, 'certs/pool.pem') },
      },
      backend: { name: 'stratum', check },
      servers: [{ name: 'stratum-litecoin-regtest-1', address: '127.0.0.1', port: 23001, agentPort: 24001 }],
      routes: [
        {
          frontend: {
            name: 'stratum_in-ltc',
            bind: '',
            port: 3335,
            tls: { bind: '', port: 3336, certificate: join(dir, 'certs/pool.pem') },
          },
          backend: { name: 'stratum-ltc', check },
          servers: [{ name: 'stratum-ltc-1', address: '127.0.0.1', port: 23003 }],
        },
      ],
      api: {
        frontend: { name: 'api_in', bind: '127.0.0.1', port: 8080 },
        backend: { name: 'api', check: { intervalMs: 2000, rise: 2, fall: 3 } },
        servers: [
          { name: 'api-1', address: '127.0.0.1', port: 24000, checkPort: 29001 },
          { name: 'api-2', address: '10.0.0.4', port: 24001, checkPort: 29009, checkAddress: '127.0.0.1' },
        ],
      },
      statsPage: { bind: '127.0.0.1', port: 8404 },
    });
    expect(haproxyRenderInput(twoChains(['api.count=0']), []).api).toBeUndefined();
    expect(haproxyBackends(pool)).toEqual([
      { chain: 'litecoin-regtest', backend: 'stratum' },
      { chain: 'ltc', backend: 'stratum-ltc' },
    ]);
  });

  it('gives Circus one watcher per kind running hashwire run with the config and the overrides', () => {
    const pool = twoChains();
    const input = circusRenderInput(pool, {
      node: '/usr/bin/node',
      cli: '/opt/hashwire/packages/cli/dist/bin.js',
      config: '/etc/hashwire/pool file.toml',
      sets: ['log.level=debug'],
    });
    expect(input.watchers).toEqual([
      {
        kind: 'jobmanager',
        cmd: "/usr/bin/node /opt/hashwire/packages/cli/dist/bin.js run jobmanager --config '/etc/hashwire/pool file.toml' --set log.level=debug --instance $(circus.wid)",
        numprocesses: 2,
        gracefulTimeoutSec: 15,
      },
      expect.objectContaining({ kind: 'stratum', numprocesses: 4, gracefulTimeoutSec: 90 }),
      expect.objectContaining({ kind: 'reporter', numprocesses: 2, gracefulTimeoutSec: 30 }),
      // One api instance for the whole pool, not per chain.
      expect.objectContaining({ kind: 'api', numprocesses: 1, gracefulTimeoutSec: 10 }),
    ]);
    expect(input.workingDir).toBe(dir);
    expect(input.logDir).toBe(join(dir, 'var/log'));
  });
});

describe('payers', () => {
  /** The two-chain pool with `payments` on the second chain only. */
  function paying(extra: string[] = []) {
    const file = join(dir, 'paying.toml');
    writeFileSync(
      file,
      TWO_CHAINS.replace(
        'bind = ":3335"\n',
        'bind = ":3335"\n[chains.payments]\nscheme = "prop"\nwalletDaemon = 0\nwallet = "pool"\nminimumPayoutSat = 5000\n',
      ),
    );
    return loadPoolConfig({ file, env: {}, sets: extra });
  }

  it('runs payer.count payers for each chain with payments only, numbered among those chains', () => {
    const payers = serviceConfigs(paying(['payer.count=2'])).filter((s) => s.kind === 'payouts');
    expect(payers.map((s) => [s.instance, s.id, s.chain])).toEqual([
      [1, 'payouts-ltc-1', 'ltc'],
      [2, 'payouts-ltc-2', 'ltc'],
    ]);
    expect(payers[0]!.config).toMatchObject({
      id: 'payouts-ltc-1',
      chain: 'ltc',
      coin: 'litecoin',
      network: 'main',
      wallet: { url: 'http://10.0.0.9:9332/wallet/pool', user: 'pool', password: 'pw' },
      payments: { scheme: 'prop', minimumPayoutSat: 5000 },
      rewardAddresses: [MAIN_ADDRESS, MAIN_ADDRESS],
      redisUrl: 'redis://:secret@10.0.0.5:6379/2',
      keyPrefix: 'pool1:',
      serviceTtlMs: 60_000,
      httpPortRange: [29000, 29999],
      statsd: expect.objectContaining({ host: '10.0.0.7' }),
    });
    // The api learns how each chain pays, for the balances it shows.
    const api = serviceConfigs(paying()).find((s) => s.kind === 'api')!;
    expect(api.config.chains).toEqual([
      { chain: 'litecoin-regtest', algorithm: 'scrypt', payments: null },
      { chain: 'ltc', algorithm: 'scrypt', payments: { scheme: 'prop', minimumPayoutSat: 5000 } },
    ]);
    // No chain pays: no payer, and no Circus watcher for them.
    expect(serviceConfigs(twoChains()).filter((s) => s.kind === 'payouts')).toEqual([]);
    expect(serviceConfigs(paying(['payer.count=0'])).filter((s) => s.kind === 'payouts')).toEqual([]);
  });

  it('gives systemd a unit per payer, with the payer stop deadline and a margin', () => {
    const input = systemdRenderInput(paying(['payer.count=2']), {
      node: '/usr/bin/node',
      cli: '/opt/hashwire/packages/cli/dist/bin.js',
      config: '/etc/hashwire/pool.toml',
    });
    const payers = input.services.filter((s) => s.name.startsWith('hashwire-payouts-'));
    expect(payers.map((s) => [s.name, s.exec.slice(2, 6).join(' '), s.timeoutStopSec])).toEqual([
      ['hashwire-payouts-ltc-1', 'run payouts --instance 1', 45],
      ['hashwire-payouts-ltc-2', 'run payouts --instance 2', 45],
    ]);
    expect(payers[0]!.description).toBe('hashwire payouts payouts-ltc-1 (chain ltc)');
  });

  it('gives Circus a payer watcher of payer.count per paying chain', () => {
    const input = circusRenderInput(paying(['payer.count=2']), {
      node: '/usr/bin/node',
      cli: '/opt/hashwire/packages/cli/dist/bin.js',
      config: '/etc/hashwire/pool.toml',
    });
    expect(input.watchers.at(-1)).toEqual({
      kind: 'payouts',
      cmd: '/usr/bin/node /opt/hashwire/packages/cli/dist/bin.js run payouts --config /etc/hashwire/pool.toml --instance $(circus.wid)',
      numprocesses: 2,
      gracefulTimeoutSec: 30,
    });
  });
});
