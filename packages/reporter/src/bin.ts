#!/usr/bin/env node
// Thin entry: reads the options as JSON (HASHWIRE_REPORTER_CONFIG, or a file path as the first
// argument) and runs one reporter. Prints one `ready` line on stdout (logs go to stderr);
// SIGTERM/SIGINT drain (new batches answered Unavailable so stratum servers fail over, batches
// being written finish, the reporter leaves discovery) and exit 0; a bad config exits 1 with
// one line naming the field. The operations issue replaces the config reading with the
// pool-wide loader.
import type { DaemonClientOptions } from '@hashwire/chain';
import {
  LOG_LEVELS,
  type LogLevel,
  StartupError,
  type StatsdOptions,
  createLogger,
  readJsonConfig,
  readServiceSecrets,
} from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis, describeRedisConfig, serviceRedisConfig } from '@hashwire/registry';
import { type Reporter, type ReporterOptions, createReporter } from './reporter.js';

/** The JSON config. */
export interface ReporterFileOptions
  extends Omit<ReporterOptions, 'redis' | 'keys' | 'daemons' | 'logger' | 'metrics' | 'curve'> {
  /**
   * CURVE: this reporter's `publicKey`, `secretKeyFile` (or `secretKey`) and the client keys it
   * lets in (`allowedClientKeys`). Required when `host` is not loopback.
   */
  curve?: { publicKey: string; secretKeyFile?: string; secretKey?: string; allowedClientKeys?: string[] };
  /** File holding the token `POST /drain` needs (or `adminToken`); without one `/drain` is refused. */
  adminTokenFile?: string;
  /** Or `redis`: ioredis options, e.g. Sentinel. */
  redisUrl?: string;
  redis?: unknown;
  /** @defaultValue 'hw:' */
  keyPrefix?: string;
  daemons?: DaemonClientOptions[];
  statsd?: StatsdOptions;
  /** @defaultValue 'info' */
  logLevel?: LogLevel;
}

function readConfig(): ReporterFileOptions {
  const record = readJsonConfig({
    envVar: 'HASHWIRE_REPORTER_CONFIG',
    ...(process.argv[2] ? { file: process.argv[2] } : {}),
    requiredText: ['id', 'chain'],
  });
  if (record.daemons !== undefined && !Array.isArray(record.daemons))
    throw new StartupError('daemons must be an array of { url, cookieFile? | user?, password? }');
  if (record.logLevel !== undefined && !LOG_LEVELS.includes(record.logLevel as LogLevel))
    throw new StartupError(`logLevel must be one of ${LOG_LEVELS.join(', ')}`);
  return record as unknown as ReporterFileOptions;
}

async function main(): Promise<number> {
  const config = readConfig();
  const secrets = readServiceSecrets(config as unknown as Record<string, unknown>);
  const {
    redisUrl: _url,
    redis: _redis,
    keyPrefix,
    daemons,
    statsd,
    logLevel,
    curve: _curve,
    adminTokenFile: _adminTokenFile,
    adminToken: _adminToken,
    ...options
  } = config;
  let redisConfig: ReturnType<typeof serviceRedisConfig>;
  try {
    redisConfig = serviceRedisConfig(config);
  } catch (error) {
    throw new StartupError((error as Error).message);
  }
  const logger = createLogger({
    name: 'reporter',
    level: logLevel ?? 'info',
    base: { id: config.id, chain: config.chain },
    destination: process.stderr,
  });
  const redis = connectRedis(redisConfig, `reporter-${config.id}`);
  try {
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new StartupError(
      `redis: cannot reach ${describeRedisConfig(redisConfig)}: ${(error as Error).message}`,
    );
  }
  // SIGTERM, SIGINT and POST /drain all start the same drain.
  let requestStop = () => {};
  const stopRequested = new Promise<void>((resolve) => {
    requestStop = resolve;
  });
  let reporter: Reporter;
  try {
    reporter = await createReporter({
      ...options,
      onDrain: () => requestStop(),
      ...(secrets.curve ? { curve: secrets.curve as ReporterOptions['curve'] & object } : {}),
      ...(secrets.adminToken ? { adminToken: secrets.adminToken } : {}),
      redis,
      keys: createKeyBuilder({ prefix: keyPrefix ?? 'hw:' }),
      ...(daemons ? { daemons } : {}),
      ...(statsd ? { metrics: { statsd } } : {}),
      logger,
    });
  } catch (error) {
    redis.disconnect();
    throw new StartupError((error as Error).message.replace(/^reporter: /, ''));
  }
  try {
    await reporter.start();
  } catch (error) {
    await reporter.close().catch(() => {});
    redis.disconnect();
    throw error;
  }
  process.stdout.write(
    `${JSON.stringify({ ready: true, id: reporter.id, endpoint: reporter.endpoint, curve: secrets.curve !== undefined })}\n`,
  );
  process.once('SIGTERM', requestStop);
  process.once('SIGINT', requestStop);
  await stopRequested;
  await reporter.drain();
  await reporter.close();
  redis.disconnect();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    const message = String(error?.message ?? error).replace(/\s*\n\s*/g, ' ');
    process.stderr.write(`reporter: ${message}\n`);
    process.exitCode = 1;
  },
);
