import { HaproxyRuntime } from '@hashwire/confgen';
import type { KeyBuilder } from '@hashwire/protocol';
import { type RedisClient, listServices } from '@hashwire/registry';
import { z } from 'zod';
import { ApiError } from './errors.js';
import { type ApiRoute, noQuery, route } from './route.js';

/** What the operator page shows besides discovery: HAProxy's servers and the stratum servers' quarantines. */

/** How long a stratum server's `/stats` may take before its quarantine is shown as unknown. */
const STATS_TIMEOUT_MS = 2000;

const haproxyServer = z.object({
  backend: z.string(),
  name: z.string(),
  status: z.string().describe('HAProxy’s status word: UP, DOWN, DRAIN, MAINT, `UP 1/2`, `no check`…'),
  sessions: z.number().describe('current client connections through it'),
  totalSessions: z.number(),
  weight: z.number(),
  agentDescription: z.string(),
});

const quarantine = z.object({
  id: z.string(),
  chain: z.string(),
  quarantine: z
    .object({ subBatches: z.number(), shares: z.number() })
    .nullable()
    .describe('share sub-batches its spool holds in quarantine; null when its /stats did not answer'),
});

/** A chain's public stratum address at HAProxy. */
export interface StratumFront {
  chain: string;
  scheme: 'stratum+tcp' | 'stratum+ssl';
  /** `host:port`, `:port` or `0.0.0.0:port` (no host: the client's own view of the api host). */
  bind: string;
}

const front = z.object({
  chain: z.string(),
  scheme: z.enum(['stratum+tcp', 'stratum+ssl']),
  host: z.string().nullable().describe('null: the host the client reached the api at'),
  port: z.number(),
});

/** `host:port` → host (null for none or a wildcard) and port. */
function splitBind(bind: string): { host: string | null; port: number } {
  const colon = bind.lastIndexOf(':');
  const host = bind.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return {
    host: host === '' || host === '0.0.0.0' || host === '::' || host === '*' ? null : host,
    port: Number(bind.slice(colon + 1)),
  };
}

export function operatorRoutes(o: {
  redis: RedisClient;
  keys: KeyBuilder;
  /** HAProxy's runtime API socket, on this host. */
  haproxyStatsSocket?: string | undefined;
  stratumFronts: readonly StratumFront[];
}): ApiRoute[] {
  const fronts = o.stratumFronts.map((f) => ({ chain: f.chain, scheme: f.scheme, ...splitBind(f.bind) }));
  const runtime = o.haproxyStatsSocket ? new HaproxyRuntime({ socketPath: o.haproxyStatsSocket }) : null;
  return [
    route({
      method: 'GET',
      url: '/v1/connect',
      summary: 'Where miners connect: each chain’s public stratum addresses at HAProxy',
      tag: 'pool',
      params: z.object({}),
      query: noQuery,
      response: z.object({ fronts: z.array(front) }),
      handler: async () => ({ fronts }),
    }),
    route({
      method: 'GET',
      url: '/v1/haproxy',
      summary: 'HAProxy’s servers (every backend) from its runtime socket: status, weight, sessions',
      tag: 'admin',
      access: 'admin',
      params: z.object({}),
      query: noQuery,
      response: z.object({ servers: z.array(haproxyServer) }),
      errors: { 502: 'HAProxy did not answer on its socket', 503: 'no haproxyStatsSocket on this instance' },
      handler: async () => {
        if (!runtime)
          throw new ApiError(
            503,
            'not_configured',
            'this api instance has no HAProxy runtime socket (option haproxyStatsSocket, pool config haproxy.statsSocket)',
          );
        try {
          return { servers: await runtime.serverStats() };
        } catch (error) {
          throw new ApiError(
            502,
            'unreachable',
            `HAProxy ${runtime.socketPath}: ${(error as Error).message}`,
          );
        }
      },
    }),
    route({
      method: 'GET',
      url: '/v1/quarantine',
      summary: 'Each live stratum server’s quarantined share sub-batches (from its /stats)',
      tag: 'admin',
      access: 'admin',
      params: z.object({}),
      query: noQuery,
      response: z.object({ servers: z.array(quarantine) }),
      handler: async () => {
        const services = await listServices(o.redis, o.keys, 'stratum');
        const servers = await Promise.all(
          services.map(async (s) => {
            const http = s.http;
            let q: { subBatches: number; shares: number } | null = null;
            if (http) {
              try {
                const res = await fetch(new URL('/stats', http), {
                  signal: AbortSignal.timeout(STATS_TIMEOUT_MS),
                });
                const stats = (await res.json()) as {
                  forwarder?: { quarantine?: { subBatches?: unknown; shares?: unknown } };
                };
                const found = stats.forwarder?.quarantine;
                if (found && Number.isFinite(found.subBatches) && Number.isFinite(found.shares))
                  q = { subBatches: found.subBatches as number, shares: found.shares as number };
              } catch {
                q = null;
              }
            }
            return { id: s.id, chain: s.chain ?? '', quarantine: q };
          }),
        );
        return { servers: servers.sort((a, b) => a.id.localeCompare(b.id)) };
      },
    }),
  ];
}
