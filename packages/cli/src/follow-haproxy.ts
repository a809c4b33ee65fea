import { parseArgs } from 'node:util';
import { HaproxyRuntime } from '@hashwire/confgen';
import { PoolUsageError, poolArgOptions, withPool } from './config-cmd.js';
import { startHaproxyFollowers } from './haproxy-followers.js';
import { poolRedis, redisLabel } from './pool.js';
import { type Registry, RegistryUnreachableError, openRegistry } from './status.js';

export const followHaproxyUsage = `usage: hashwire follow-haproxy [--config FILE] [--set PATH=VALUE ...] [--chain ID] [--socket PATH]

Keeps HAProxy's stratum backend of each chain equal to the live stratum servers in the
registry, and its api backend (with api.count) equal to the live api instances, through
HAProxy's runtime API (haproxy.statsSocket), as its own process: what
\`hashwire up\` does inside, for HAProxy run by Circus, systemd or by hand. New servers are
added, draining ones set to drain, gone ones put in maintenance and deleted once their last
connection closed; established miner connections are never touched. HAProxy or Redis away
is logged once and retried every second. SIGINT/SIGTERM stop it (exit 0); a bad config or
an unreachable Redis at start exits 1.

  --config FILE     the pool config: redis, haproxy.statsSocket, haproxy.backend, chains
  --set PATH=VALUE  override one key (repeatable)
  --chain ID        follow this chain's backend only (default: every chain's, and the api's)
  --socket PATH     HAProxy's runtime socket (default haproxy.statsSocket of the config)`;

/** `hashwire follow-haproxy`: runs until SIGINT/SIGTERM. */
export async function followHaproxyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...poolArgOptions,
      chain: { type: 'string' },
      socket: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(`${followHaproxyUsage}\n`);
    return 0;
  }
  if (positionals.length > 0) {
    throw new PoolUsageError(`follow-haproxy takes no arguments, got "${positionals.join(' ')}"`);
  }
  return withPool(values, async ({ pool }) => {
    const chains = pool.chains.map((c) => c.id);
    if (values.chain !== undefined && !chains.includes(values.chain)) {
      process.stderr.write(
        `follow-haproxy: --chain ${values.chain} is not a chain of the config; chains: ${chains.join(', ')}\n`,
      );
      return 1;
    }
    const write = (line: string) => process.stdout.write(`follow-haproxy: ${line}\n`);
    const socketPath = values.socket ?? pool.haproxy.statsSocket;
    let registry: Registry;
    try {
      registry = await openRegistry(
        { redis: poolRedis(pool), label: redisLabel(pool), prefix: pool.redis.keyPrefix },
        'hashwire-follow-haproxy',
      );
    } catch (error) {
      if (!(error instanceof RegistryUnreachableError)) throw error;
      process.stderr.write(`follow-haproxy: ${error.message}\n`);
      return 1;
    }
    const stop = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (stop.signal.aborted) return;
      write(`${signal}: stopping (HAProxy keeps the servers it has)`);
      stop.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      write(`registry ${redisLabel(pool)}, HAProxy runtime socket ${socketPath}`);
      const running = startHaproxyFollowers({
        pool,
        registry,
        runtime: new HaproxyRuntime({ socketPath }),
        ...(values.chain !== undefined && { chain: values.chain }),
        write,
      });
      running.synced.then(
        () => {
          for (const { chain, backend } of running.followers)
            write(
              chain === ''
                ? `backend ${backend} follows the api instances (in step with the registry)`
                : `backend ${backend} follows the stratum servers of chain ${chain} (in step with the registry)`,
            );
        },
        () => {},
      );
      if (!stop.signal.aborted) {
        await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
      }
      await running.close();
      registry.close();
      write('stopped');
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}
