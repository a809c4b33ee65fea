import {
  type FollowerLogger,
  type HaproxyRuntime,
  type StratumFollower,
  followApiServers,
  followStratumServers,
} from '@hashwire/confgen';
import type { PoolConfig } from '@hashwire/core';
import { haproxyBackends, haproxyRenderInput } from './pool.js';
import type { Registry } from './status.js';

export interface HaproxyFollowers {
  /** Per backend: the chain of a stratum backend, '' for the api's. */
  readonly followers: readonly { chain: string; backend: string; follower: StratumFollower }[];
  /** Resolves once every backend was made equal to the registry once. */
  readonly synced: Promise<void>;
  close(): Promise<void>;
}

/**
 * HAProxy's followers of a pool, as `hashwire up` and `hashwire follow-haproxy` run them: one per
 * chain (or the one chain asked for), each keeping that chain's backend equal to its live stratum
 * servers, and (unless one chain was asked for) one keeping the api backend equal to the live api
 * instances, with the check settings the file was rendered with, all on one registry connection
 * and one HAProxy. A change is one line (`add server <backend>/<name> <address>`, `set server …`,
 * `del server …`); a failure is one line too, said again only when its cause changes (HAProxy or
 * Redis away fails every pass until it is back).
 */
export function startHaproxyFollowers(options: {
  pool: PoolConfig;
  registry: Registry;
  runtime: HaproxyRuntime;
  chain?: string;
  write: (line: string) => void;
}): HaproxyFollowers {
  const { pool, registry, runtime, write } = options;
  const rendered = haproxyRenderInput(pool, []);
  const check = rendered.backend?.check ?? {};
  const routes: { chain: string; backend: string }[] = haproxyBackends(pool).filter(
    (r) => options.chain === undefined || r.chain === options.chain,
  );
  if (rendered.api && options.chain === undefined) routes.push({ chain: '', backend: pool.api.backend });
  const followers = routes.map(({ chain, backend }) => {
    let lastWarning = '';
    const common = {
      redis: registry.redis,
      keys: registry.keys,
      runtime,
      backend,
      logger: {
        info: (fields: object) => {
          const command = (fields as { command?: string }).command ?? '';
          // `add server` is followed by enabling its checks and itself: one line says it.
          if (command.startsWith('enable ')) return;
          write(command.startsWith('add server ') ? command.split(' ').slice(0, 4).join(' ') : command);
          lastWarning = '';
        },
        warn: (fields: object, message: string) => {
          const line = `${message} (backend ${backend}): ${(fields as { err?: Error }).err?.message ?? ''}`;
          if (line === lastWarning) return;
          lastWarning = line;
          write(`${line} (retried every second)`);
        },
      } satisfies FollowerLogger,
    };
    const follower =
      chain === ''
        ? followApiServers({ ...common, check: rendered.api?.backend?.check ?? {} })
        : followStratumServers({ ...common, chain, check });
    return { chain, backend, follower };
  });
  const synced = Promise.all(followers.map((f) => f.follower.synced)).then(() => {});
  synced.catch(() => {}); // closed before the first sync: nobody may be waiting
  return {
    followers,
    synced,
    async close() {
      await Promise.all(followers.map((f) => f.follower.close()));
    },
  };
}
