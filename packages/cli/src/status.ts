import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadPoolConfig } from '@hashwire/core';
import { type KeyBuilder, SERVICE_KINDS, createKeyBuilder } from '@hashwire/protocol';
import {
  type RedisClient,
  type RedisConfig,
  type ServiceInfo,
  connectRedis,
  listServices,
} from '@hashwire/registry';
import { poolRedis, redisLabel } from './pool.js';

export const statusUsage = `usage: hashwire status [--config FILE | --redis URL --prefix P] [--json | --prometheus-sd FILE]

A table of the live services in the registry (kind, id, chain, endpoints, state, load, version,
uptime, pid), sorted by kind. VERSION of a stratum server or reporter names the share wire it
speaks: stratum servers send shares only to reporters of their own (see the rolling upgrade in
docs/operations.md). LOAD is what each service measured at its last registry refresh:
sessions and connections (stratum), batches and shares per second (reporter), subscribed
stratum servers and jobs per minute (jobmanager), rates over the last minute; a payer (payouts)
shows "paying" when it holds its chain's payer lease, "standby" otherwise. For each stratum
server, QUARANTINE is what its /stats says its spool holds in quarantine (share sub-batches
reporters refused as malformed, or too old to resend): 0, "N (S shares)", or ? when /stats did
not answer; see docs/operations.md. Exit 1 when Redis cannot be reached.

  --config FILE         the pool config: its redis.url and redis.keyPrefix
  --redis URL           Redis to read (default redis://127.0.0.1:6379)
  --prefix P            key prefix (default hw:)
  --json                the same services as a JSON array
  --prometheus-sd FILE  write a Prometheus file_sd target list (each service's /metrics address,
                        labels service, chain, id) to FILE, atomically; - for standard output`;

/** A bad command line for status or drain (one line, exit code 2). */
export class RegistryUsageError extends Error {
  override readonly name = 'RegistryUsageError';
}

/** Redis could not be reached: printed as one line, exit code 1. */
export class RegistryUnreachableError extends Error {
  override readonly name = 'RegistryUnreachableError';
}

/** The command-line options shared by `status` and `drain`. */
export const registryArgs = {
  config: { type: 'string' },
  redis: { type: 'string' },
  prefix: { type: 'string' },
} as const;

export interface RegistryTarget {
  redis: RedisConfig;
  /** How messages name it (a URL without its password). */
  label: string;
  prefix: string;
  /** With `--config`: the pool's `http.adminTokenFile` (what `drain` sends). */
  adminTokenFile?: string;
}

/** Where the registry is: `--config` (the pool file's redis section) or `--redis`/`--prefix`. */
export function registryTarget(values: {
  config?: string | undefined;
  redis?: string | undefined;
  prefix?: string | undefined;
}): RegistryTarget {
  if (values.config !== undefined) {
    if (values.redis !== undefined || values.prefix !== undefined) {
      throw new RegistryUsageError('give either --config or --redis/--prefix, not both');
    }
    const pool = loadPoolConfig({ file: values.config });
    return {
      redis: poolRedis(pool),
      label: redisLabel(pool),
      prefix: pool.redis.keyPrefix,
      adminTokenFile: pool.http.adminTokenFile,
    };
  }
  const url = values.redis ?? 'redis://127.0.0.1:6379';
  return { redis: url, label: url, prefix: values.prefix ?? 'hw:' };
}

/** registryTarget, with a bad `--config` printed (every problem) instead of thrown: undefined then. */
export function registryTargetOrReport(
  values: Parameters<typeof registryTarget>[0],
  command: string,
): RegistryTarget | undefined {
  try {
    return registryTarget(values);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`hashwire ${command}: the config is not valid:\n${error.message}\n`);
    return undefined;
  }
}

export interface Registry {
  redis: RedisClient;
  keys: KeyBuilder;
  close(): void;
}

/** Connects and checks Redis answers; a RegistryUnreachableError naming the URL and the cause if not. */
export async function openRegistry(target: RegistryTarget, name = 'hashwire-cli'): Promise<Registry> {
  const keys = createKeyBuilder({ prefix: target.prefix });
  const redis = connectRedis(target.redis, name);
  let cause: Error | undefined;
  const onError = (error: Error) => {
    cause = error;
  };
  redis.on('error', onError);
  try {
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    const why = (cause ?? (error as Error)).message;
    throw new RegistryUnreachableError(`cannot reach Redis at ${target.label}: ${why}`);
  } finally {
    redis.off('error', onError);
  }
  return { redis, keys, close: () => redis.disconnect() };
}

/** A live service as status shows it: the registry's fields and every endpoint it published. */
export interface ServiceRow extends ServiceInfo {
  /** `rpc`, `http` and any other endpoint field (e.g. `stratum`, `agent`), non-empty only. */
  endpoints: Record<string, string>;
  uptimeMs: number;
}

const ENDPOINT_FIELDS = ['rpc', 'http', 'stratum', 'agent', 'api'] as const;

/** Every live service of every kind, sorted by kind (in SERVICE_KINDS order) then id. */
export async function readServices(registry: Registry, now = Date.now()): Promise<ServiceRow[]> {
  const lists = await Promise.all(
    SERVICE_KINDS.map((kind) => listServices(registry.redis, registry.keys, kind)),
  );
  return lists.flatMap((services) =>
    services
      .sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }))
      .map((info) => {
        const fields = info as unknown as Record<string, unknown>;
        const endpoints: Record<string, string> = {};
        for (const field of ENDPOINT_FIELDS) {
          const value = fields[field];
          if (typeof value === 'string' && value !== '') endpoints[field] = value;
        }
        return { ...info, endpoints, uptimeMs: info.startedAt > 0 ? Math.max(0, now - info.startedAt) : 0 };
      }),
  );
}

/** `45s`, `12m05s`, `3h07m`, `2d04h`. */
export function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

/** A stratum server's spool quarantine, as its `/stats` reports it (`forwarder.quarantine`). */
export interface QuarantineSummary {
  subBatches: number;
  shares: number;
  dir: string;
}

/** A service row with, for a stratum server, its quarantine (null: its /stats did not answer). */
export type StatusRow = ServiceRow & { quarantine?: QuarantineSummary | null };

/** Reads `forwarder.quarantine` from each stratum server's `/stats` (at most `timeoutMs` each, in parallel). */
export async function readQuarantines(rows: readonly ServiceRow[], timeoutMs = 2000): Promise<StatusRow[]> {
  return Promise.all(
    rows.map(async (row): Promise<StatusRow> => {
      if (row.kind !== 'stratum') return row;
      const http = row.endpoints.http;
      if (!http) return { ...row, quarantine: null };
      try {
        const response = await fetch(new URL('/stats', http), { signal: AbortSignal.timeout(timeoutMs) });
        const stats = (await response.json()) as { forwarder?: { quarantine?: QuarantineSummary } };
        const q = stats.forwarder?.quarantine;
        const valid = q && Number.isFinite(q.subBatches) && Number.isFinite(q.shares);
        return {
          ...row,
          quarantine: valid ? { subBatches: q.subBatches, shares: q.shares, dir: q.dir } : null,
        };
      } catch {
        return { ...row, quarantine: null };
      }
    }),
  );
}

function quarantineCell(row: StatusRow): string {
  if (row.quarantine === undefined) return '-';
  if (row.quarantine === null) return '?';
  const { subBatches, shares } = row.quarantine;
  return subBatches === 0 ? '0' : `${subBatches} (${shares} shares)`;
}

const COLUMNS = [
  'KIND',
  'ID',
  'CHAIN',
  'ENDPOINTS',
  'STATE',
  'LOAD',
  'VERSION',
  'UPTIME',
  'PID',
  'QUARANTINE',
] as const;

/** How each published load figure reads in the LOAD column. */
const LOAD_UNITS: Record<string, string> = {
  sessions: 'sessions',
  connections: 'conns',
  batchesPerS: 'batches/s',
  sharesPerS: 'shares/s',
  subscribers: 'subscribers',
  jobsPerMin: 'jobs/min',
  requestsPerS: 'req/s',
};

/** `120 sessions, 131 conns`; a service that publishes no figures (an older version): its `load`. */
export function formatLoad(info: Pick<ServiceInfo, 'load' | 'loadFigures'>): string {
  const figures = Object.entries(info.loadFigures ?? {});
  if (figures.length === 0) return String(info.load);
  return figures
    .map(([name, value]) =>
      // A payer: 1 on the one holding its chain's lease.
      name === 'leader' ? (value === 1 ? 'paying' : 'standby') : `${value} ${LOAD_UNITS[name] ?? name}`,
    )
    .join(', ');
}

/** One Prometheus file_sd target group. */
export interface PrometheusTarget {
  targets: string[];
  labels: { service: string; chain: string; id: string };
}

/**
 * A Prometheus file_sd list of every live service with an HTTP endpoint (`/metrics` is there):
 * one group per service, labelled like the services label their own series (`service` = kind,
 * `chain`, `id`), so `up` carries them too.
 */
export function prometheusTargets(rows: readonly ServiceInfo[]): PrometheusTarget[] {
  const targets: PrometheusTarget[] = [];
  for (const row of rows) {
    let address: string;
    try {
      address = new URL(row.http).host;
    } catch {
      continue; // no HTTP endpoint published: nothing to scrape
    }
    if (address === '') continue;
    targets.push({ targets: [address], labels: { service: row.kind, chain: row.chain, id: row.id } });
  }
  return targets;
}

/** Writes `text` to `file` through a temporary file and a rename: Prometheus never reads half a list. */
function writeAtomically(file: string, text: string): void {
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  writeFileSync(temporary, text);
  renameSync(temporary, file);
}

/**
 * The version, and for the two ends of `reporter.shares` the share wire they speak: during a
 * rolling upgrade across a wire change, stratum servers send only to reporters of their wire.
 * A stratum server or reporter that publishes none is of a release before share wire 2.
 */
export function versionCell(row: Pick<ServiceInfo, 'kind' | 'version' | 'sharesWire'>): string {
  const version = row.version || '-';
  if (row.kind !== 'stratum' && row.kind !== 'reporter') return version;
  return `${version} (shares wire ${row.sharesWire ?? 1})`;
}

/** An aligned text table, one row per service; a single line when there is none. */
export function formatServiceTable(rows: readonly StatusRow[]): string {
  if (rows.length === 0) return 'no live services in the registry';
  const cells = rows.map((r) => [
    r.kind,
    r.id,
    r.chain || '-',
    Object.entries(r.endpoints)
      .map(([name, url]) => `${name}=${url}${name === 'rpc' && r.curveKey ? ' (curve)' : ''}`)
      .join(' ') || '-',
    r.state,
    formatLoad(r),
    versionCell(r),
    formatUptime(r.uptimeMs),
    String(r.pid),
    quarantineCell(r),
  ]);
  const widths = COLUMNS.map((title, i) =>
    Math.max(title.length, ...cells.map((c) => (c[i] as string).length)),
  );
  const line = (c: readonly string[]) =>
    c
      .map((text, i) => text.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [line(COLUMNS), ...cells.map(line)].join('\n');
}

/** `hashwire status`: prints the table (or JSON); 1 when Redis is unreachable. */
export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...registryArgs,
      json: { type: 'boolean' },
      'prometheus-sd': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const sdFile = values['prometheus-sd'];
  if (sdFile !== undefined && (sdFile === '' || values.json)) {
    process.stderr.write(
      `hashwire status: ${sdFile === '' ? '--prometheus-sd needs a file (or - for standard output)' : 'give --json or --prometheus-sd, not both'}\n`,
    );
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${statusUsage}\n`);
    return 0;
  }
  const target = registryTargetOrReport(values, 'status');
  if (!target) return 1;
  let registry: Registry;
  try {
    registry = await openRegistry(target, 'hashwire-status');
  } catch (error) {
    if (!(error instanceof RegistryUnreachableError)) throw error;
    process.stderr.write(`hashwire status: ${error.message}\n`);
    return 1;
  }
  try {
    if (sdFile !== undefined) {
      const text = `${JSON.stringify(prometheusTargets(await readServices(registry)), null, 2)}\n`;
      if (sdFile === '-') process.stdout.write(text);
      else {
        try {
          writeAtomically(sdFile, text);
        } catch (error) {
          process.stderr.write(`hashwire status: cannot write ${sdFile}: ${(error as Error).message}\n`);
          return 1;
        }
      }
      return 0;
    }
    const rows = await readQuarantines(await readServices(registry));
    process.stdout.write(
      values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatServiceTable(rows)}\n`,
    );
    const held = rows.filter((r) => (r.quarantine?.subBatches ?? 0) > 0);
    if (!values.json && held.length > 0) {
      const where = held.map((r) => `${r.id}: ${r.quarantine!.dir}`).join(', ');
      process.stdout.write(
        `quarantined share sub-batches (credited to no one until re-injected; see docs/operations.md, "Quarantined share batches"): ${where}\n`,
      );
    }
    return 0;
  } finally {
    registry.close();
  }
}
