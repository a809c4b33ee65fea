#!/usr/bin/env node
// Thin entry: reads the options as JSON (HASHWIRE_API_CONFIG, or a file path as the first
// argument) and runs one api instance. Prints one `ready` line on stdout (logs go to stderr);
// SIGTERM/SIGINT (and POST /drain) leave discovery, stop listening and exit 0; a bad config
// exits 1 with one line naming the field.
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
import { type ApiService, type ApiServiceOptions, createApiService } from './service.js';

/** The JSON config. */
export interface ApiFileOptions
  extends Omit<ApiServiceOptions, 'redis' | 'keys' | 'logger' | 'metrics' | 'onDrain'> {
  /** File holding the token `POST /drain` needs (or `adminToken`); without one `/drain` is refused. */
  adminTokenFile?: string;
  /** Or `redis`: ioredis options, e.g. Sentinel. */
  redisUrl?: string;
  redis?: unknown;
  /** @defaultValue 'hw:' */
  keyPrefix?: string;
  statsd?: StatsdOptions;
  /** @defaultValue 'info' */
  logLevel?: LogLevel;
}

function readConfig(): ApiFileOptions {
  const record = readJsonConfig({
    envVar: 'HASHWIRE_API_CONFIG',
    ...(process.argv[2] ? { file: process.argv[2] } : {}),
    requiredText: ['id'],
  });
  if (!Array.isArray(record.chains))
    throw new StartupError('chains must be an array of { chain, algorithm: sha256d | scrypt }');
  if (record.logLevel !== undefined && !LOG_LEVELS.includes(record.logLevel as LogLevel))
    throw new StartupError(`logLevel must be one of ${LOG_LEVELS.join(', ')}`);
  return record as unknown as ApiFileOptions;
}

async function main(): Promise<number> {
  const config = readConfig();
  const secrets = readServiceSecrets(config as unknown as Record<string, unknown>);
  const {
    redisUrl: _url,
    redis: _redis,
    keyPrefix,
    statsd,
    logLevel,
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
    name: 'api',
    level: logLevel ?? 'info',
    base: { id: config.id },
    destination: process.stderr,
  });
  const redis = connectRedis(redisConfig, `api-${config.id}`);
  try {
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new StartupError(
      `redis: cannot reach ${describeRedisConfig(redisConfig)}: ${(error as Error).message}`,
    );
  }
  let requestStop = () => {};
  const stopRequested = new Promise<void>((resolve) => {
    requestStop = resolve;
  });
  let api: ApiService;
  try {
    api = await createApiService({
      ...options,
      onDrain: () => requestStop(),
      ...(secrets.adminToken ? { adminToken: secrets.adminToken } : {}),
      redis,
      keys: createKeyBuilder({ prefix: keyPrefix ?? 'hw:' }),
      ...(statsd ? { metrics: { statsd } } : {}),
      logger,
    });
  } catch (error) {
    redis.disconnect();
    throw new StartupError((error as Error).message.replace(/^api: /, ''));
  }
  try {
    await api.start();
  } catch (error) {
    await api.close().catch(() => {});
    redis.disconnect();
    throw error;
  }
  process.stdout.write(`${JSON.stringify({ ready: true, id: api.id, url: api.url })}\n`);
  process.once('SIGTERM', requestStop);
  process.once('SIGINT', requestStop);
  await stopRequested;
  await api.drain();
  await api.close();
  redis.disconnect();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    const message = String(error?.message ?? error).replace(/\s*\n\s*/g, ' ');
    process.stderr.write(`api: ${message}\n`);
    process.exitCode = 1;
  },
);
