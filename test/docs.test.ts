// docs/metrics.md and docs/grafana/hashwire.json cannot drift from the code: the three service
// bins run as operators run them (real Redis, real litecoind regtest pair, statsd to a UDP
// socket here), and what their /metrics endpoints and statsd lines carry is compared with what
// the documentation and the dashboard claim.
import { randomBytes } from 'node:crypto';
import { type Socket, createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { usage } from '@hashwire/cli';
import { STATSD_NAMES } from '@hashwire/core';
import { RpcErrorCode, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis, getService } from '@hashwire/registry';
import { type RpcError, createRpcClient } from '@hashwire/rpc';
import {
  type LitecoinRegtest,
  type RedisServer,
  startLitecoinRegtest,
  startRedis,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DocumentedMetric,
  type Exposition,
  familyOf,
  grafanaPanels,
  parseExposition,
  parseMetricsDoc,
  parseStatsdLine,
  promqlReferences,
} from './docs-parse.js';
import {
  type ServiceProcess,
  killService,
  regtestJobmanagerConfig,
  spawnService,
} from './service-process.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const docsDir = join(root, 'docs');
const KINDS = ['jobmanager', 'stratum', 'reporter', 'payouts'] as const;
type Kind = (typeof KINDS)[number];
const CHAIN = 'litecoin-regtest';
const STATSD_PREFIX = 'hwdocs.';
/** Labels a dashboard may use that no service sets: Prometheus adds them to every scraped series. */
const TARGET_LABELS = ['instance', 'job'];
/** Series Prometheus makes itself for every target (scrape health), documented as such. */
const PROMETHEUS_SERIES = ['up'];

let redisServer: RedisServer;
let ltc: LitecoinRegtest;
let redis: RedisClient;
let statsd: Socket;
let spoolDir: string;
const statsdLines: string[] = [];
const services = new Map<Kind, { process: ServiceProcess; http: string }>();
const exposition = new Map<Kind, Exposition>();
const documented = parseMetricsDoc(readFileSync(join(docsDir, 'metrics.md'), 'utf8'));

async function scrape(kind: Kind): Promise<Exposition> {
  const response = await fetch(`${services.get(kind)!.http}/metrics`);
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

beforeAll(async () => {
  [redisServer, ltc] = await Promise.all([startRedis(), startLitecoinRegtest({ nodes: 2 })]);
  redis = connectRedis(redisServer.url);
  spoolDir = mkdtempSync(join(tmpdir(), 'hw-docs-spool-'));
  statsd = createSocket('udp4');
  statsd.on('message', (msg) => statsdLines.push(...msg.toString().split('\n').filter(Boolean)));
  await new Promise<void>((done) => statsd.bind(0, '127.0.0.1', done));
  const keyPrefix = `docs${randomBytes(3).toString('hex')}:`;
  const keys = createKeyBuilder({ prefix: keyPrefix });
  const statsdOptions = { host: '127.0.0.1', port: statsd.address().port, prefix: STATSD_PREFIX };
  const payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
  const configs: Record<Kind, Record<string, unknown>> = {
    jobmanager: regtestJobmanagerConfig({
      id: 'jm-docs',
      keyPrefix,
      redisUrl: redisServer.url,
      payout,
      nodes: ltc.nodes,
      extra: { statsd: statsdOptions },
    }),
    stratum: {
      id: 'stratum-docs',
      chain: CHAIN,
      coin: 'litecoin',
      network: 'regtest',
      redisUrl: redisServer.url,
      keyPrefix,
      spoolDir,
      jobFeed: { heartbeatIntervalMs: 250 },
      statsd: statsdOptions,
    },
    reporter: {
      id: 'reporter-docs',
      chain: CHAIN,
      redisUrl: redisServer.url,
      keyPrefix,
      statsd: statsdOptions,
    },
    // The payer of the chain: it takes the lease and runs (nobody is due: outcome `nothing`).
    payouts: {
      id: 'payouts-docs',
      chain: CHAIN,
      coin: 'litecoin',
      network: 'regtest',
      redisUrl: redisServer.url,
      keyPrefix,
      wallet: { url: ltc.nodes[0]!.rpcUrl, cookieFile: ltc.nodes[0]!.cookieFile },
      payments: { scheme: 'prop' },
      leaseTtlMs: 2000,
      maturityPollMs: 500,
      httpPortRange: [0, 0],
      statsd: statsdOptions,
    },
  };
  await Promise.all(
    KINDS.map(async (kind) => {
      const process = await spawnService(kind, configs[kind]);
      const info = await getService(redis, keys, kind, configs[kind].id as string);
      if (!info?.http) throw new Error(`${kind} registered no http endpoint: ${JSON.stringify(info)}`);
      services.set(kind, { process, http: info.http });
    }),
  );

  // One handled request per RPC method, so `hashwire_rpc_seconds{method}` has every documented
  // value; both are refused (wrong chain, empty batch), which is timed all the same.
  const jm = createRpcClient(services.get('jobmanager')!.process.ready.endpoint as string, {
    heartbeatIntervalMs: 250,
  });
  const reporter = createRpcClient(services.get('reporter')!.process.ready.endpoint as string);
  try {
    const refused = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (e: RpcError) => e.code,
      );
    expect(
      await refused(
        jm.request('jm.submitBlock', {
          chain: 'not-this-chain',
          jobId: '1',
          extranonce1: '00000000',
          extranonce2: '00000000',
          ntime: '00000000',
          nonce: '00000000',
          version: '20000000',
          shareId: 'docs',
        }),
      ),
    ).toBe(RpcErrorCode.BadRequest);
    expect(await refused(reporter.request('reporter.shares', {} as never))).toBe(RpcErrorCode.BadRequest);
  } finally {
    await Promise.all([jm.close(), reporter.close()]);
  }
  // The leader's first job (job_push) and the stratum server's first gauges (every second).
  await waitFor(
    async () => {
      for (const kind of KINDS) exposition.set(kind, await scrape(kind));
      const pushed = exposition
        .get('jobmanager')!
        .samples.some((s) => s.name === 'hashwire_job_push_seconds_count' && s.value > 0);
      const sent = new Set(statsdLines.map((l) => parseStatsdLine(l, STATSD_PREFIX).name));
      return (
        pushed &&
        [
          'job_push',
          'connections',
          'spool_backlog',
          'batches',
          'rpc',
          'payout_runs',
          'payout_owed_sat',
        ].every((n) => sent.has(n))
      );
    },
    { timeoutMs: 30_000, what: 'the first job and the first statsd lines of every service' },
  );
}, 120_000);

afterAll(async () => {
  for (const { process } of services.values()) await killService(process);
  statsd?.close();
  redis?.disconnect();
  await Promise.all([ltc?.stop(), redisServer?.stop()]);
  if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
});

const names = (rows: DocumentedMetric[]) => rows.map((r) => r.name).sort();

describe('docs/metrics.md lists exactly what the services expose', () => {
  it.each(KINDS)('%s: every family on /metrics is documented with its type, and nothing more', (kind) => {
    const { types } = exposition.get(kind)!;
    const doc = new Set(names(documented));
    expect({
      undocumented: [...types.keys()].filter((n) => !doc.has(n)),
      documentedButAbsent: [...doc].filter((n) => !types.has(n)),
    }).toEqual({ undocumented: [], documentedButAbsent: [] });
    for (const row of documented)
      expect({ [row.name]: types.get(row.name) }).toEqual({ [row.name]: row.type });
  });

  it('every documented label value is on some service from the start', () => {
    for (const row of documented.filter((r) => r.name.startsWith('hashwire_'))) {
      for (const [label, values] of row.labels) {
        const seen = new Set(
          KINDS.flatMap((k) =>
            exposition
              .get(k)!
              .samples.filter((s) => familyOf(s.name, exposition.get(k)!.types) === row.name)
              .map((s) => s.labels[label]),
          ),
        );
        for (const value of values) expect(seen, `${row.name}{${label}="${value}"}`).toContain(value);
      }
    }
  });

  it('every series with a non-zero value is fed by a service the table says feeds it', () => {
    for (const kind of KINDS) {
      const { samples, types } = exposition.get(kind)!;
      for (const s of samples.filter((x) => x.name.startsWith('hashwire_') && x.value > 0)) {
        const row = documented.find((r) => r.name === familyOf(s.name, types))!;
        expect(row.fedBy, `${s.name} is non-zero on the ${kind}`).toContain(kind);
      }
    }
  });

  it('statsd: the documented names are the ones the code sends, and each line carries service, id and chain', () => {
    const statsdNames = documented.filter((r) => r.statsd !== null).map((r) => r.statsd);
    expect(statsdNames.sort()).toEqual(Object.values(STATSD_NAMES).sort());
    const ids = new Map(KINDS.map((k) => [k, services.get(k)!.process.ready.id]));
    for (const line of statsdLines) {
      const parsed = parseStatsdLine(line, STATSD_PREFIX);
      const row = documented.find((r) => r.statsd === parsed.name);
      expect(row, `statsd name ${parsed.name} (${line}) is documented`).toBeDefined();
      expect(row!.fedBy, line).toContain(parsed.tags.service);
      expect(parsed.tags.id, line).toBe(ids.get(parsed.tags.service as Kind));
      expect(parsed.tags.chain, line).toBe(CHAIN);
      const type = { counter: 'c', gauge: 'g', histogram: 'ms' }[row!.type];
      expect(parsed.type, line).toBe(type);
    }
  });
});

describe('docs/grafana/hashwire.json queries only what exists', () => {
  const dashboard = JSON.parse(readFileSync(join(docsDir, 'grafana', 'hashwire.json'), 'utf8'));
  const panels = grafanaPanels(dashboard);
  const exprs = [
    ...panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')),
    ...dashboard.templating.list
      .filter((v: { type: string }) => v.type === 'query')
      .map((v: { query: string | { query: string } }) =>
        typeof v.query === 'string' ? v.query : v.query.query,
      ),
  ].filter(Boolean) as string[];

  it('is a dashboard with a Prometheus datasource variable and chain/instance variables', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const variables = dashboard.templating.list.map((v: { name: string; type: string; query: unknown }) => [
      v.name,
      v.type,
    ]);
    expect(variables).toEqual(
      expect.arrayContaining([
        ['DS_PROMETHEUS', 'datasource'],
        ['chain', 'query'],
        ['instance', 'query'],
      ]),
    );
    // Every panel and query reads from the chosen Prometheus.
    for (const p of panels.filter((x) => x.type !== 'row')) {
      expect(JSON.stringify(p.datasource), p.title).toContain('${DS_PROMETHEUS}');
    }
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(exprs.length).toBeGreaterThan(10);
  });

  it('every metric and label a query names is one the services expose', () => {
    const families = new Map<string, string>();
    const labels = new Set(TARGET_LABELS);
    for (const kind of KINDS) {
      const { types, samples } = exposition.get(kind)!;
      for (const [name, type] of types) families.set(name, type);
      for (const s of samples) for (const l of Object.keys(s.labels)) labels.add(l);
    }
    for (const expr of exprs) {
      const refs = promqlReferences(expr);
      for (const metric of refs.metrics) {
        if (PROMETHEUS_SERIES.includes(metric)) continue;
        expect(families.has(familyOf(metric, families)), `${metric} in ${expr}`).toBe(true);
        if (/_bucket$/.test(metric)) expect(families.get(familyOf(metric, families))).toBe('histogram');
      }
      for (const label of refs.labels) expect(labels, `label ${label} in ${expr}`).toContain(label);
    }
  });
});

describe('docs link to files that exist', () => {
  it.each(readdirSync(docsDir).filter((f) => f.endsWith('.md')))('%s', (file) => {
    const text = readFileSync(join(docsDir, file), 'utf8');
    for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      expect(existsSync(resolve(dirname(join(docsDir, file)), target)), `${file} → ${target}`).toBe(true);
    }
  });
});

describe("the operator's guide names only commands the CLI has", () => {
  it('every `hashwire <command>` in docs/operations.md is in `hashwire help`', () => {
    const help = usage();
    const commands = new Set([...help.matchAll(/^ {2}([a-z][a-z-]*) {2}/gm)].map((m) => m[1]!));
    const text = readFileSync(join(docsDir, 'operations.md'), 'utf8');
    const named = new Set([...text.matchAll(/`hashwire ([a-z][a-z-]*)/g)].map((m) => m[1]!));
    expect(named.size).toBeGreaterThan(5);
    expect([...named].filter((c) => !commands.has(c))).toEqual([]);
  });
});
