import type { Logger, Metrics } from '@hashwire/core';
import type { JobmanagerHealth } from '@hashwire/protocol';
import type { TemplateSource } from './template-source.js';

export interface HealthReportsOptions {
  id: string;
  chain: string;
  source: Pick<TemplateSource, 'health'>;
  metrics: Metrics;
  log: Logger;
  /** How often the health is measured; a change goes out at once, the same news every fourth beat. */
  intervalMs: number;
  /** Sends a health report to every subscriber (leader or not). */
  push(health: JobmanagerHealth): void;
}

export interface HealthReports {
  /** `/healthz`: healthy while a daemon gives fresh templates. */
  status(): { ok: true } | { ok: false; reasons: string[] };
  stop(): void;
}

/**
 * Daemon health goes to every subscriber, leader or not: stratum servers decide from the whole
 * group whether miners still have real work (see JobFeed `unhealthy`). A change is logged once.
 */
export function startHealthReports(options: HealthReportsOptions): HealthReports {
  const { id, chain, source, metrics, log } = options;
  let lastHealthy: boolean | null = null;
  let beats = 0;
  const beat = () => {
    const now = Date.now();
    const health = source.health(now);
    const templateAgeMs = now - health.lastTemplateAt;
    metrics.templateHealth(health.healthy, templateAgeMs / 1000);
    beats++;
    const changed = health.healthy !== lastHealthy;
    if (changed && !health.healthy) {
      log.error({ reason: health.reason, templateAgeMs }, `jobmanager: unhealthy: ${health.reason}`);
    } else if (changed && lastHealthy !== null) {
      log.info({ templateAgeMs }, 'jobmanager: healthy again: a daemon gives templates');
    }
    if (!changed && beats % 4 !== 0) return;
    lastHealthy = health.healthy;
    options.push({
      jmId: id,
      chain,
      healthy: health.healthy,
      lastOkAt: health.lastOkAt,
      lastError: health.healthy ? health.lastError : (health.reason ?? health.lastError),
      lastTemplateAt: health.lastTemplateAt,
      templateAgeMs,
    });
  };
  const timer = setInterval(beat, options.intervalMs);
  timer.unref();
  return {
    status() {
      const health = source.health();
      return health.healthy ? { ok: true } : { ok: false, reasons: [health.reason as string] };
    },
    stop: () => clearInterval(timer),
  };
}
