import { parseArgs } from 'node:util';
import { runDemo } from './demo-run.js';
import { DEMO_REDIS_KINDS, type DemoRedisKind } from './demo-services.js';

export const demoUsage = `usage: hashwire demo [--duration SECONDS] [--interval SECONDS] [--redis single|cluster]

Runs a whole pool locally on embedded defaults: its own redis-server (or Redis Cluster), two
litecoind regtest nodes (MWEB active), HAProxy on 127.0.0.1:3333 (another free port if that one is taken) in
front of 2 stratum servers, 2 jobmanagers and 2 reporters (each its own process, started by
the same engine as "hashwire up", logs in a temporary directory), and 20 simulated miners that
mine through HAProxy. Prints a status line every few seconds; a service that exits is started
again (try "hashwire drain <id>"); Ctrl-C (or SIGTERM) stops every process it started in order.
The api (behind HAProxy) serves the dashboard: its URL is printed once the pool is up.

  --duration SECONDS  stop after mining this long (default: until Ctrl-C or SIGTERM)
  --interval SECONDS  between two status lines (default 5)
  --redis single      one redis-server (the default)
  --redis cluster     a Redis Cluster of 3 masters and 3 replicas on free ports, which the demo
                      starts and stops; the pool config uses redis.cluster`;

/** A bad `hashwire demo` command line (printed as one line, exit code 2). */
export class DemoUsageError extends Error {
  override readonly name = 'DemoUsageError';
}

function seconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new DemoUsageError(`--${flag} must be a number of seconds above 0, got "${value}"`);
  }
  return Math.round(n * 1000);
}

/** `hashwire demo`: parses the command line, stops on SIGINT/SIGTERM; exit code 0 when it stopped cleanly. */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      interval: { type: 'string' },
      redis: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${demoUsage}\n`);
    return 0;
  }
  const durationMs = seconds(values.duration, 'duration');
  const intervalMs = seconds(values.interval, 'interval');
  const redis = values.redis ?? 'single';
  if (!(DEMO_REDIS_KINDS as readonly string[]).includes(redis)) {
    throw new DemoUsageError(`--redis must be ${DEMO_REDIS_KINDS.join(' or ')}, got "${redis}"`);
  }
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    process.stdout.write(`\n${signal}: stopping\n`);
    controller.abort(new Error(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await runDemo({
      signal: controller.signal,
      redis: redis as DemoRedisKind,
      ...(durationMs !== undefined && { durationMs }),
      ...(intervalMs !== undefined && { intervalMs }),
    });
    return result.ok && result.leftBehind.length === 0 ? 0 : 1;
  } catch (error) {
    process.stderr.write(`hashwire demo: ${(error as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
