import { type Metrics, type StatusServer, startStatusServer } from '@hashwire/core';
import type { ShareResult } from '@hashwire/protocol';
import type { JobFeed } from './job-feed.js';
import type { StratumServer } from './server.js';
import type { BlockEvent } from './shares.js';

export interface ObserveStratumOptions {
  server: StratumServer;
  metrics: Metrics;
  /** The feed gives the daemon side of health. */
  feed?: JobFeed;
  /** @defaultValue [29000, 29999] */
  httpPortRange?: readonly [number, number];
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** Published instead of a wildcard `host`. @defaultValue '127.0.0.1' */
  advertiseHost?: string;
  /** Extra fields for `/stats` (forwarder backlog, spool). */
  extraStats?: () => Record<string, unknown>;
  /** What `POST /drain` does (the bin: the same as SIGTERM). No `/drain` without it. */
  onDrain?: () => void;
  /** The token `POST /drain` must carry (`Authorization: Bearer`); without it `/drain` is refused. */
  adminToken?: string;
}

/** What became of a block candidate, as `hashwire_blocks_total` counts it on a stratum server. */
export function blockOutcome(
  event: BlockEvent,
): 'accepted' | 'rejected' | 'stale' | 'orphaned' | 'unanswered' {
  const reply = event.reply;
  if (!reply) return event.stale ? 'stale' : 'unanswered';
  if (reply.accepted) return 'accepted';
  if (reply.stale) return 'stale';
  return reply.orphaned ? 'orphaned' : 'rejected';
}

/**
 * A stratum server's metrics and HTTP face: shares by result and blocks as they happen, the
 * open connections every second, and `/healthz` (503 while not running or while the job feed
 * is unhealthy), `/stats`, `/metrics`.
 */
export async function observeStratum(options: ObserveStratumOptions): Promise<StatusServer> {
  const { server, metrics, feed } = options;
  server.on('share', (share) => metrics.shares(share.result as ShareResult));
  server.on('block', (event) => {
    metrics.blocks('submitted');
    metrics.blocks(blockOutcome(event));
  });
  const gauge = setInterval(() => metrics.connections(server.stats().connections), 1000);
  gauge.unref();
  const http = await startStatusServer({
    portRange: options.httpPortRange ?? [29000, 29999],
    host: options.host ?? '127.0.0.1',
    ...(options.advertiseHost ? { advertiseHost: options.advertiseHost } : {}),
    metrics,
    stats: () => ({ ...server.stats(), ...(options.extraStats?.() ?? {}) }),
    ...(options.onDrain ? { onDrain: options.onDrain } : {}),
    ...(options.adminToken ? { adminToken: options.adminToken } : {}),
    health: () => {
      const reasons: string[] = [];
      const state = server.stats().state;
      if (state !== 'running') reasons.push(`stratum server is ${state}`);
      const stale = feed?.unhealthyReasons();
      if (stale) reasons.push(`no fresh work: ${stale.join('; ')}`);
      if (feed && !feed.current()) reasons.push('no job yet');
      return reasons.length === 0 ? { ok: true } : { ok: false, reasons };
    },
  });
  return {
    port: http.port,
    url: http.url,
    async close() {
      clearInterval(gauge);
      await http.close();
    },
  };
}
