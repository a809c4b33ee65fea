import { readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { isLoopbackHost } from '@hashwire/protocol';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import {
  ConfigError,
  type PathSegment,
  type PoolConfigIssue,
  formatPath,
  issuesFromZod,
  schemaNodeAt,
  suggest,
} from './pool-config-issues.js';
import { type PoolConfig, poolConfigSchema } from './pool-config-schema.js';

export interface LoadPoolConfigOptions {
  /** `.toml`, `.yaml`/`.yml` or `.json`; without one, only embedded defaults, env and sets. */
  file?: string;
  /** `HASHWIRE_<PATH>` variables with `__` between path segments. @defaultValue process.env */
  env?: Record<string, string | undefined>;
  /** `path=value` overrides (`--set stratum.count=3`), applied last, in order. */
  sets?: readonly string[];
  /** Folder relative paths are resolved against. @defaultValue the file's folder, else the working directory */
  baseDir?: string;
}

export const ENV_PREFIX = 'HASHWIRE_';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

type Tree = Record<string, unknown>;

function readFile(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError([{ path: '', message: `cannot read config file ${file}: ${code}` }]);
  }
  const ext = extname(file).toLowerCase();
  let parsed: unknown;
  try {
    if (ext === '.toml') parsed = parseToml(text);
    else if (ext === '.yaml' || ext === '.yml') parsed = parseYaml(text) ?? {};
    else if (ext === '.json') parsed = JSON.parse(text);
    else {
      throw new ConfigError([
        {
          path: '',
          message: `config file ${file}: unknown format "${ext}"`,
          allowed: '.toml, .yaml, .yml, .json',
        },
      ]);
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const reason = (error as Error).message.split('\n')[0];
    throw new ConfigError([
      { path: '', message: `config file ${file} is not valid ${ext.slice(1).toUpperCase()}: ${reason}` },
    ]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError([{ path: '', message: `config file ${file} must hold a table of sections` }]);
  }
  return parsed as Tree;
}

interface Override {
  /** Raw path segments as written: `stratum`, `vardiff`, `TARGET_SHARES_PER_MIN`, `0`. */
  segments: string[];
  text: string;
  source: string;
}

function envOverrides(env: Record<string, string | undefined>): Override[] {
  // Only names with `__` are config paths: every key sits in a section, and HASHWIRE_STRATUM_CONFIG,
  // HASHWIRE_CACHE_DIR and friends are not config keys.
  return Object.entries(env)
    .filter(([name, value]) => name.startsWith(ENV_PREFIX) && name.includes('__') && value !== undefined)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => ({
      segments: name.slice(ENV_PREFIX.length).split('__'),
      text: value as string,
      source: name,
    }));
}

function setOverrides(sets: readonly string[], issues: PoolConfigIssue[]): Override[] {
  const overrides: Override[] = [];
  for (const set of sets) {
    const eq = set.indexOf('=');
    const key = eq > 0 ? set.slice(0, eq).trim() : '';
    if (!key) {
      issues.push({
        path: '',
        message: `--set ${set}: expected path=value, e.g. stratum.count=3`,
        source: `--set ${set}`,
      });
      continue;
    }
    const segments = key.replace(/\[(\d+)\]/g, '.$1').split('.');
    overrides.push({ segments, text: set.slice(eq + 1), source: `--set ${set}` });
  }
  return overrides;
}

/** Finds each written segment among the schema's keys (env names match camelCase keys case- and `_`-blind). */
function resolveSegments(override: Override): { segments: PathSegment[] } | PoolConfigIssue {
  const resolved: PathSegment[] = [];
  for (const written of override.segments) {
    const node = schemaNodeAt(resolved);
    if (node?.type === 'array' && /^\d+$/.test(written)) {
      resolved.push(Number(written));
      continue;
    }
    const known = Object.keys(node?.properties ?? {});
    const folded = written.toLowerCase().replace(/[-_]/g, '');
    const key = known.find((k) => k.toLowerCase() === folded);
    if (key) {
      resolved.push(key);
      continue;
    }
    if (node?.type === 'object' && typeof node.additionalProperties === 'object') {
      resolved.push(written); // a free-form table such as statsd.tags
      continue;
    }
    const near = suggest(written, known);
    const what = node?.type === 'array' ? 'a list index (0, 1, …)' : 'unknown key';
    return {
      path: formatPath([...resolved, written]),
      message: `${what}${near ? `; did you mean "${near}"?` : ''}`,
      ...(known.length ? { allowed: known.join(', ') } : {}),
      source: override.source,
    };
  }
  if (resolved.length === 0) return { path: '', message: 'an empty key path', source: override.source };
  return { segments: resolved };
}

/** A value as TOML reads it (number, boolean, string, list); a string where the key takes one. */
function parseValue(text: string, segments: PathSegment[]): unknown {
  if (schemaNodeAt(segments)?.type === 'string') {
    return /^".*"$|^'.*'$/.test(text.trim()) ? text.trim().slice(1, -1) : text;
  }
  try {
    const value = (parseToml(`v = ${text}`) as { v: unknown }).v;
    if (['number', 'boolean', 'string', 'bigint'].includes(typeof value) || Array.isArray(value)) {
      return typeof value === 'bigint' ? Number(value) : value;
    }
  } catch {
    // Not a TOML value: taken as the text itself.
  }
  return text;
}

function setAt(tree: Tree, segments: PathSegment[], value: unknown): void {
  let node: Record<string | number, unknown> = tree;
  segments.forEach((segment, i) => {
    if (i === segments.length - 1) {
      node[segment] = value;
      return;
    }
    const next = node[segment];
    if (typeof next !== 'object' || next === null)
      node[segment] = typeof segments[i + 1] === 'number' ? [] : {};
    node = node[segment] as Record<string | number, unknown>;
  });
}

function sourceOf(path: string, sources: Map<string, string>): string | undefined {
  let found: string | undefined;
  let length = -1;
  for (const [key, source] of sources) {
    const covers =
      path === key ||
      path.startsWith(`${key}.`) ||
      path.startsWith(`${key}[`) ||
      key.startsWith(`${path}.`) ||
      key.startsWith(`${path}[`);
    if (covers && key.length > length) {
      found = source;
      length = key.length;
    }
  }
  return found;
}

/** Where one chain's miners connect at HAProxy, and the key path each address came from. */
export interface ChainFront {
  chain: string;
  bind: string;
  bindPath: string;
  tlsBind?: string;
  tlsBindPath?: string;
}

/**
 * Each chain's public addresses at HAProxy: `chains[i].bind` / `.tlsBind`, for the first chain
 * falling back to `haproxy.bind` / `haproxy.tls.bind`. A further chain without `bind` is left
 * out (`loadPoolConfig` refuses that config when HAProxy is on).
 */
export function chainFronts(config: PoolConfig): ChainFront[] {
  const fronts: ChainFront[] = [];
  config.chains.forEach((chain, i) => {
    const first = i === 0;
    const bind = chain.bind ?? (first ? config.haproxy.bind : undefined);
    if (bind === undefined) return;
    const tlsBind = config.haproxy.tls
      ? (chain.tlsBind ?? (first ? config.haproxy.tls.bind : undefined))
      : undefined;
    fronts.push({
      chain: chain.id,
      bind,
      bindPath: chain.bind !== undefined ? `chains[${i}].bind` : 'haproxy.bind',
      ...(tlsBind !== undefined && {
        tlsBind,
        tlsBindPath: chain.tlsBind !== undefined ? `chains[${i}].tlsBind` : 'haproxy.tls.bind',
      }),
    });
  });
  return fronts;
}

const portOf = (bind: string) => Number(bind.slice(bind.lastIndexOf(':') + 1));

/** HAProxy's public ports: one chain per port, no port twice. */
function frontChecks(config: PoolConfig): PoolConfigIssue[] {
  const issues: PoolConfigIssue[] = [];
  config.chains.forEach((chain, i) => {
    if (i > 0 && chain.bind === undefined)
      issues.push({
        path: `chains[${i}].bind`,
        message:
          'needed when HAProxy fronts several chains: each chain takes its miners on its own port (the first chain has haproxy.bind)',
      });
    if (chain.tlsBind !== undefined && !config.haproxy.tls)
      issues.push({ path: `chains[${i}].tlsBind`, message: 'needs haproxy.tls (the certificate)' });
  });
  const taken = new Map<number, string>();
  const claim = (bind: string, path: string) => {
    const port = portOf(bind);
    const owner = taken.get(port);
    if (owner !== undefined) issues.push({ path, message: `port ${port} is already ${owner}'s` });
    else taken.set(port, path);
  };
  for (const front of chainFronts(config)) {
    claim(front.bind, front.bindPath);
    if (front.tlsBind !== undefined && front.tlsBindPath !== undefined)
      claim(front.tlsBind, front.tlsBindPath);
  }
  if (config.haproxy.statsBind) claim(config.haproxy.statsBind, 'haproxy.statsBind');
  if (config.api.count > 0) claim(config.api.bind, 'api.bind');
  return issues;
}

/** Checks across keys that a schema of single values cannot say. */
function crossChecks(config: PoolConfig): PoolConfigIssue[] {
  const issues: PoolConfigIssue[] = [];
  const redisKinds = (['url', 'sentinel', 'cluster'] as const).filter((k) => config.redis[k] !== undefined);
  if (redisKinds.length > 1) {
    issues.push({
      path: 'redis',
      message: `give one of url, sentinel, cluster, not ${redisKinds.join(' and ')}`,
    });
  }
  const ranges: Record<string, readonly [number, number] | undefined> = {
    'stratum.agentPortRange': config.stratum.agentPortRange,
    'rpc.portRange': config.rpc.portRange,
    'http.portRange': config.http.portRange,
    'stratum.portRange': config.stratum.portRange,
    'api.portRange': config.api.portRange,
  };
  for (const [path, range] of Object.entries(ranges)) {
    if (range && range[0] > range[1]) {
      issues.push({ path, message: `first port ${range[0]} is above last port ${range[1]}` });
    }
  }
  const { vardiff, forwarder } = config.stratum;
  if (vardiff.minDifficulty > vardiff.maxDifficulty) {
    issues.push({
      path: 'stratum.vardiff.minDifficulty',
      message: `${vardiff.minDifficulty} is above maxDifficulty ${vardiff.maxDifficulty}`,
    });
  }
  if (forwarder.retryDelayMs > forwarder.maxRetryDelayMs) {
    issues.push({
      path: 'stratum.forwarder.retryDelayMs',
      message: `is above maxRetryDelayMs ${forwarder.maxRetryDelayMs}`,
    });
  }
  const seen = new Map<string, number>();
  config.chains.forEach((chain, i) => {
    const first = seen.get(chain.id);
    if (first !== undefined)
      issues.push({
        path: `chains[${i}].id`,
        message: `"${chain.id}" is already the id of chains[${first}]; give each chain its own id`,
      });
    else seen.set(chain.id, i);
    chain.daemons.forEach((daemon, j) => {
      let urlUser = '';
      try {
        urlUser = decodeURIComponent(new URL(daemon.url).username);
      } catch {
        issues.push({
          path: `chains[${i}].daemons[${j}].url`,
          message: `${JSON.stringify(daemon.url)} is not a URL`,
        });
        return;
      }
      if (!daemon.cookieFile && !daemon.user && !urlUser) {
        issues.push({
          path: `chains[${i}].daemons[${j}]`,
          message: 'needs credentials: user and password, user:password@ in the url, or cookieFile',
        });
      }
    });
    const remainders = chain.payouts.filter((p) => p.valueSat === undefined).length;
    if (remainders > 1)
      issues.push({
        path: `chains[${i}].payouts`,
        message: 'at most one payout may leave out valueSat (it gets the rest)',
      });
  });
  if (config.haproxy.enabled) issues.push(...frontChecks(config));
  if (!config.rpc.curve && !isLoopbackHost(config.rpc.host)) {
    issues.push({
      path: 'rpc.curve',
      message: `needed: rpc.host ${config.rpc.host} is not loopback (127.0.0.1, ::1), so RPC must be authenticated; "hashwire keys" writes the keys and prints this section`,
    });
  }
  return issues;
}

function resolvePaths(config: PoolConfig, baseDir: string): void {
  const at = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  config.stratum.spoolDir = at(config.stratum.spoolDir);
  config.haproxy.statsSocket = at(config.haproxy.statsSocket);
  config.haproxy.masterSocket = at(config.haproxy.masterSocket);
  config.haproxy.configFile = at(config.haproxy.configFile);
  if (config.haproxy.tls) config.haproxy.tls.certFile = at(config.haproxy.tls.certFile);
  config.circus.workingDir = at(config.circus.workingDir);
  config.circus.logDir = at(config.circus.logDir);
  config.http.adminTokenFile = at(config.http.adminTokenFile);
  if (config.rpc.curve) {
    for (const kind of ['jobmanager', 'stratum', 'reporter'] as const) {
      const keys = config.rpc.curve[kind];
      if (keys.secretKeyFile) keys.secretKeyFile = at(keys.secretKeyFile);
    }
  }
  for (const chain of config.chains) {
    for (const daemon of chain.daemons) if (daemon.cookieFile) daemon.cookieFile = at(daemon.cookieFile);
  }
}

/**
 * The pool config: embedded defaults < file < env (`HASHWIRE_STRATUM__COUNT=3`) < sets
 * (`stratum.count=3`). Every problem is collected before anything is thrown: a ConfigError
 * lists them all, each with its key path, the allowed values and, for env and sets, the source.
 */
export function loadPoolConfig(options: LoadPoolConfigOptions = {}): PoolConfig {
  const tree: Tree = options.file ? readFile(options.file) : {};
  const issues: PoolConfigIssue[] = [];
  const sources = new Map<string, string>();
  const overrides = [
    ...envOverrides(options.env ?? process.env),
    ...setOverrides(options.sets ?? [], issues),
  ];
  for (const override of overrides) {
    const found = resolveSegments(override);
    if (!('segments' in found)) {
      issues.push(found);
      continue;
    }
    setAt(tree, found.segments, parseValue(override.text, found.segments));
    sources.set(formatPath(found.segments), override.source);
  }
  const parsed = poolConfigSchema.safeParse(tree);
  if (!parsed.success) issues.push(...issuesFromZod(parsed.error, tree));
  if (issues.length > 0 || !parsed.success) {
    throw new ConfigError(
      issues.map((issue) => {
        const source = issue.source ?? sourceOf(issue.path, sources);
        return source ? { ...issue, source } : issue;
      }),
    );
  }
  const config = parsed.data as PoolConfig;
  for (const chain of config.chains) chain.id ??= `${chain.coin}-${chain.network}`;
  if (!config.redis.url && !config.redis.sentinel && !config.redis.cluster)
    config.redis.url = DEFAULT_REDIS_URL;
  const cross = crossChecks(config);
  if (cross.length > 0)
    throw new ConfigError(
      cross.map((issue) => ({
        ...issue,
        ...(sourceOf(issue.path, sources) ? { source: sourceOf(issue.path, sources) } : {}),
      })),
    );
  resolvePaths(config, options.baseDir ?? (options.file ? dirname(resolve(options.file)) : process.cwd()));
  return config;
}
