import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { StartupError, readSecretFile } from '@hashwire/core';
import { type ServiceEvent, type ServiceInfo, watchServices } from '@hashwire/registry';
import {
  type Registry,
  RegistryUnreachableError,
  RegistryUsageError,
  openRegistry,
  readServices,
  registryArgs,
  registryTargetOrReport,
} from './status.js';

export const drainUsage = `usage: hashwire drain <service-id> [--config FILE | --redis URL --prefix P] [--token-file FILE] [--timeout SECONDS]

Drains one live service the way its kind needs (POST /drain on its HTTP endpoint: a stratum
server sends its miners elsewhere in waves and flushes its spool, a jobmanager hands its lease
to a standby, a reporter finishes its batches), then follows it in the registry until it is
gone. Exit 0 once it left; 1 for an unknown id (the live ids are listed), an unreachable Redis,
a refused drain, or a service still registered after the timeout.

  --config FILE      the pool config: its redis.url, redis.keyPrefix and http.adminTokenFile
  --redis URL        Redis to read (default redis://127.0.0.1:6379)
  --prefix P         key prefix (default hw:)
  --token-file FILE  the admin token POST /drain needs (default: the config's http.adminTokenFile,
                     else var/admin.token when it exists)
  --timeout SECONDS  how long to follow it (default 120)`;

export interface DrainOptions {
  registry: Registry;
  /** `id`, or `kind/id` when two kinds share an id. */
  service: string;
  timeoutMs: number;
  write: (line: string) => void;
  /** Sent as `Authorization: Bearer`; services refuse `POST /drain` without it. */
  adminToken?: string;
}

/** Why a drain did not end with the service gone; printed as one line, exit code 1. */
export class DrainError extends Error {
  override readonly name = 'DrainError';
}

function describe(s: ServiceInfo): string {
  return `${s.kind} ${s.id}`;
}

/** Finds the service, POSTs /drain and resolves once it has left the registry. */
export async function drainService(options: DrainOptions): Promise<void> {
  const { registry, write } = options;
  const live = await readServices(registry);
  const [kindPart, idPart] = options.service.includes('/')
    ? (options.service.split('/', 2) as [string, string])
    : [undefined, options.service];
  const matches = live.filter((s) => s.id === idPart && (kindPart === undefined || s.kind === kindPart));
  if (matches.length === 0) {
    const ids = live.map((s) => s.id).join(', ') || 'none';
    throw new DrainError(`no live service "${options.service}"; live: ${ids}`);
  }
  if (matches.length > 1) {
    const which = matches.map((s) => `${s.kind}/${s.id}`).join(', ');
    throw new DrainError(`"${options.service}" is more than one service (${which}); name it as kind/id`);
  }
  const target = matches[0] as ServiceInfo;
  if (!target.http) throw new DrainError(`${describe(target)} publishes no http endpoint to drain through`);

  // Watch before asking, so neither its draining state nor its leaving can be missed.
  const watcher = watchServices({
    redis: registry.redis,
    keys: registry.keys,
    kind: target.kind,
    reconcileMs: 500,
  });
  watcher.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  try {
    await watcher.ready;
    const startedAt = performance.now();
    const since = () => `${((performance.now() - startedAt) / 1000).toFixed(1)} s`;
    let state = watcher.services.get(target.id)?.state;
    const gone = new Promise<void>((resolve) => {
      const onEvent = (event: ServiceEvent) => {
        if (event.service.id !== target.id) return;
        if (event.type === 'down') {
          watcher.off('event', onEvent);
          resolve();
        } else if (event.service.state !== state) {
          state = event.service.state;
          write(`${target.id}: state ${state} (after ${since()})`);
        }
      };
      watcher.on('event', onEvent);
      if (!watcher.services.has(target.id)) {
        watcher.off('event', onEvent);
        resolve();
      }
    });
    write(`draining ${describe(target)} (pid ${target.pid}, ${target.http})`);
    let reply: Response;
    try {
      reply = await fetch(`${target.http}/drain`, {
        method: 'POST',
        ...(options.adminToken ? { headers: { authorization: `Bearer ${options.adminToken}` } } : {}),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      throw new DrainError(`${target.http}/drain did not answer: ${(error as Error).message}`);
    }
    const body = await reply.text();
    if (reply.status !== 202) {
      const hint =
        reply.status === 401 || reply.status === 403
          ? options.adminToken
            ? ' (is --token-file the token of that host? hashwire keys admin makes one to copy to every host)'
            : ' (give --token-file FILE or --config FILE with http.adminTokenFile)'
          : '';
      throw new DrainError(`${target.http}/drain answered ${reply.status}: ${body.trim()}${hint}`);
    }
    write(`${target.id}: drain started (POST /drain → 202); following it in the registry`);
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), options.timeoutMs);
    });
    if ((await Promise.race([gone, timedOut])) === 'timeout') {
      throw new DrainError(
        `${describe(target)} is still registered (state ${state}) after ${options.timeoutMs / 1000} s; its log says why`,
      );
    }
    write(`${target.id}: gone from the registry after ${since()}`);
  } finally {
    clearTimeout(timer);
    await watcher.close();
  }
}

/** `hashwire drain <service-id>`. */
export async function drainCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...registryArgs,
      'token-file': { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${drainUsage}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new RegistryUsageError(`drain takes one service id, got ${positionals.length}`);
  }
  const timeoutS = values.timeout === undefined ? 120 : Number(values.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
    throw new RegistryUsageError(`--timeout must be a number of seconds above 0, got "${values.timeout}"`);
  }
  const target = registryTargetOrReport(values, 'drain');
  if (!target) return 1;
  const fallbackTokenFile = resolve('var', 'admin.token');
  const tokenFile =
    values['token-file'] ??
    target.adminTokenFile ??
    (existsSync(fallbackTokenFile) ? fallbackTokenFile : undefined);
  let adminToken: string | undefined;
  try {
    const field = values['token-file'] !== undefined ? '--token-file' : 'http.adminTokenFile';
    adminToken = tokenFile === undefined ? undefined : readSecretFile(field, tokenFile);
  } catch (error) {
    if (!(error instanceof StartupError)) throw error;
    process.stderr.write(`hashwire drain: ${error.message}\n`);
    return 1;
  }
  let registry: Registry | undefined;
  try {
    registry = await openRegistry(target, 'hashwire-drain');
    await drainService({
      registry,
      service: positionals[0] as string,
      timeoutMs: Math.round(timeoutS * 1000),
      write: (line) => process.stdout.write(`${line}\n`),
      ...(adminToken !== undefined && { adminToken }),
    });
    return 0;
  } catch (error) {
    if (!(error instanceof DrainError || error instanceof RegistryUnreachableError)) throw error;
    process.stderr.write(`hashwire drain: ${error.message}\n`);
    return 1;
  } finally {
    registry?.close();
  }
}
