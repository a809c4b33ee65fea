#!/usr/bin/env node
// Thin entry: reads the options as JSON (HASHWIRE_JOBMANAGER_CONFIG, or a file path as the
// first argument), starts a jobmanager, drains on SIGTERM/SIGINT. The operations issue
// replaces this with the pool-wide config loader.
import {
  LOG_LEVELS,
  type LogLevel,
  StartupError,
  createLogger,
  readJsonConfig,
  readServiceSecrets,
} from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisConfig, connectRedis, serviceRedisConfig } from '@hashwire/registry';
import { createJobManager } from './jobmanager.js';
import type { JobManagerOptions } from './options.js';

type FileOptions = Omit<JobManagerOptions, 'redis' | 'keys' | 'curve' | 'logger'> & {
  /** JSON log lines on stderr from this level. @defaultValue 'info' */
  logLevel?: LogLevel;
  /**
   * CURVE: this jobmanager's `publicKey`, `secretKeyFile` (or `secretKey`) and the client keys it
   * lets in (`allowedClientKeys`). Required when `host` is not loopback.
   */
  curve?: { publicKey: string; secretKeyFile?: string; secretKey?: string; allowedClientKeys?: string[] };
  /** File holding the token `POST /drain` needs (or `adminToken`); without one `/drain` is refused. */
  adminTokenFile?: string;
  /** Or `redis`: ioredis options, e.g. Sentinel. */
  redisUrl?: string;
  redis?: unknown;
  keyPrefix?: string;
};

async function main(): Promise<number> {
  const config = readJsonConfig({
    envVar: 'HASHWIRE_JOBMANAGER_CONFIG',
    ...(process.argv[2] ? { file: process.argv[2] } : {}),
    requiredText: ['id', 'coin', 'network'],
  }) as unknown as FileOptions;
  if (config.logLevel !== undefined && !LOG_LEVELS.includes(config.logLevel)) {
    throw new StartupError(`logLevel must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const secrets = readServiceSecrets(config as unknown as Record<string, unknown>);
  let redisConfig: RedisConfig;
  try {
    redisConfig = serviceRedisConfig(config);
  } catch (error) {
    throw new StartupError((error as Error).message);
  }
  const {
    redisUrl: _url,
    redis: _redis,
    curve: _curve,
    adminTokenFile: _adminTokenFile,
    adminToken: _adminToken,
    logLevel,
    ...options
  } = config;
  const logger = createLogger({ name: 'jobmanager', level: logLevel ?? 'info', destination: process.stderr });
  const redis = connectRedis(redisConfig, config.id);
  // SIGTERM, SIGINT and POST /drain all start the same planned handover.
  let requestStop = () => {};
  const stopRequested = new Promise<void>((resolve) => {
    requestStop = resolve;
  });
  let jm: Awaited<ReturnType<typeof createJobManager>>;
  try {
    jm = await createJobManager({
      ...options,
      redis,
      keys: createKeyBuilder({ prefix: config.keyPrefix ?? 'hw:' }),
      logger,
      onDrain: () => requestStop(),
      ...(secrets.curve ? { curve: secrets.curve as JobManagerOptions['curve'] & object } : {}),
      ...(secrets.adminToken ? { adminToken: secrets.adminToken } : {}),
    });
  } catch (error) {
    // Nothing may keep the process alive after a failed start: it must exit with its message.
    redis.disconnect();
    throw error;
  }
  process.stdout.write(
    `${JSON.stringify({ ready: true, id: jm.id, endpoint: jm.endpoint, curve: secrets.curve !== undefined })}\n`,
  );
  logger.info(
    { id: jm.id, chain: jm.chain, endpoint: jm.endpoint, version: jm.stats().version },
    'jobmanager: started',
  );
  process.once('SIGTERM', requestStop);
  process.once('SIGINT', requestStop);
  await stopRequested;
  await jm.drain().catch(() => {});
  redis.disconnect();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`jobmanager: ${error.message}\n`);
    process.exitCode = 1;
  },
);
