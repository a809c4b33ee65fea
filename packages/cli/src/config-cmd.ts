import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ConfigError,
  type PoolConfig,
  chainFronts,
  formatIssue,
  loadPoolConfig,
  poolConfigReference,
} from '@hashwire/core';
import { SERVICE_RUN_KINDS, instanceCount, redisLabel, serviceConfigs } from './pool.js';

export const configUsage = `usage: hashwire config check|show|reference [--config FILE] [--set PATH=VALUE ...]

  check      load and check the pool config: "config OK: …" and exit 0, or every problem with
             its key path and the allowed values, and exit 1
  show       the loaded config with every default filled in, as JSON
  reference  every key with type, default and allowed values, as Markdown (docs/configuration.md)

  --config FILE        .toml, .yaml/.yml or .json (default: $HASHWIRE_CONFIG, else defaults only)
  --set PATH=VALUE     override one key, e.g. --set stratum.count=3 (repeatable; after env)

Environment: HASHWIRE_<SECTION>__<KEY>=VALUE overrides a key, e.g. HASHWIRE_STRATUM__COUNT=3.`;

/** A bad command line of config, run or render (one line, exit code 2). */
export class PoolUsageError extends Error {
  override readonly name = 'PoolUsageError';
}

/** The options every command reading the pool config takes. */
export const poolArgOptions = {
  config: { type: 'string', short: 'c' },
  set: { type: 'string', multiple: true },
} as const;

export interface LoadedPool {
  pool: PoolConfig;
  /** Absolute path of the file read, if any. */
  file?: string;
  sets: string[];
}

/**
 * The pool config of a command line: `--config` (else `$HASHWIRE_CONFIG`), env overrides and
 * `--set`; checked down to the payout addresses. Throws ConfigError listing every problem.
 */
export function loadPoolFromArgs(values: {
  config?: string | undefined;
  set?: string[] | undefined;
}): LoadedPool {
  const given = values.config ?? process.env.HASHWIRE_CONFIG;
  const file = given ? resolve(given) : undefined;
  const sets = values.set ?? [];
  const pool = loadPoolConfig({ ...(file && { file }), env: process.env, sets });
  serviceConfigs(pool); // coin, network and payout addresses
  return { pool, ...(file && { file }), sets };
}

/** Every problem of a config, one per line, for stderr. */
export function configErrorText(error: ConfigError, file?: string): string {
  const count = error.issues.length;
  const where = file ? ` in ${file}` : '';
  return `config: ${count} problem${count === 1 ? '' : 's'}${where}:\n${error.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}\n`;
}

/** Runs `body` with the loaded pool; a bad config is printed and gives exit code 1. */
export async function withPool(
  values: { config?: string | undefined; set?: string[] | undefined },
  body: (loaded: LoadedPool) => Promise<number> | number,
): Promise<number> {
  let loaded: LoadedPool;
  try {
    loaded = loadPoolFromArgs(values);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(configErrorText(error, values.config ?? process.env.HASHWIRE_CONFIG));
    return 1;
  }
  return body(loaded);
}

/** `config OK: …`: what the pool will run. */
export function configSummary(pool: PoolConfig): string {
  const chains = pool.chains.length;
  const names: Record<string, string> = { stratum: 'stratum server', api: 'api instance', payouts: 'payer' };
  const counts = SERVICE_RUN_KINDS.flatMap((kind) => {
    const n = instanceCount(pool, kind);
    // Payers only when a chain pays (chains[].payments).
    if (kind === 'payouts' && n === 0) return [];
    return [`${n} ${names[kind] ?? kind}${n === 1 ? '' : 's'}`];
  });
  const fronts = chainFronts(pool).map((f) => (pool.chains.length > 1 ? `${f.bind} (${f.chain})` : f.bind));
  const apiFront = pool.api.count > 0 ? `, api on ${pool.api.bind}` : '';
  const front = pool.haproxy.enabled ? `HAProxy on ${fronts.join(', ')}${apiFront}` : 'no HAProxy';
  return `config OK: ${chains} chain${chains === 1 ? '' : 's'} (${pool.chains.map((c) => c.id).join(', ')}), ${counts.join(', ')}, ${front}, Redis ${redisLabel(pool)} prefix ${pool.redis.keyPrefix}`;
}

export async function configCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    process.stdout.write(`${configUsage}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'reference') {
    process.stdout.write(poolConfigReference());
    return 0;
  }
  if (sub !== 'check' && sub !== 'show') {
    throw new PoolUsageError(`unknown config command "${sub}"; use check, show or reference`);
  }
  const { values } = parseArgs({ args: rest, options: poolArgOptions, allowPositionals: false });
  return withPool(values, ({ pool }) => {
    process.stdout.write(sub === 'check' ? `${configSummary(pool)}\n` : `${JSON.stringify(pool, null, 2)}\n`);
    return 0;
  });
}
