#!/usr/bin/env node
// Thin entry: reads the options as JSON (HASHWIRE_REPORTER_CONFIG, or a file path as the first
// argument) and runs one reporter. Prints one `ready` line on stdout (logs go to stderr);
// SIGTERM/SIGINT drain (new batches answered Unavailable so stratum servers fail over, batches
// being written finish, the reporter leaves discovery) and exit 0; a bad config exits 1 with
// one line naming the field. The operations issue replaces the config reading with the
// pool-wide loader.
import { readFileSync } from 'node:fs';
import type { DaemonClientOptions } from '@hashwire/chain';
import { LOG_LEVELS, type LogLevel, type StatsdOptions, createLogger } from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis } from '@hashwire/registry';
import { type Reporter, type ReporterOptions, createReporter } from './reporter.js';

/** The JSON config. */
export interface ReporterFileOptions
  extends Omit<ReporterOptions, 'redis' | 'keys' | 'daemons' | 'logger' | 'metrics'> {
  redisUrl: string;
  /** @defaultValue 'hw:' */
  keyPrefix?: string;
  daemons?: DaemonClientOptions[];
  statsd?: StatsdOptions;
  /** @defaultValue 'info' */
  logLevel?: LogLevel;
}

class StartupError extends Error {}

function readConfig(): ReporterFileOptions {
  const path = process.argv[2];
  const text = path ? readFileSync(path, 'utf8') : process.env.HASHWIRE_REPORTER_CONFIG;
  if (!text) throw new StartupError('give a JSON config file or HASHWIRE_REPORTER_CONFIG');
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new StartupError(`config is not JSON: ${(error as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw new StartupError('config must be a JSON object');
  const record = config as Record<string, unknown>;
  for (const field of ['id', 'chain', 'redisUrl']) {
    if (typeof record[field] !== 'string' || record[field] === '')
      throw new StartupError(`${field} must be a non-empty string`);
  }
  if (record.daemons !== undefined && !Array.isArray(record.daemons))
    throw new StartupError('daemons must be an array of { url, cookieFile? | user?, password? }');
  if (record.logLevel !== undefined && !LOG_LEVELS.includes(record.logLevel as LogLevel))
    throw new StartupError(`logLevel must be one of ${LOG_LEVELS.join(', ')}`);
  return config as ReporterFileOptions;
}

async function main(): Promise<number> {
  const config = readConfig();
  const { redisUrl, keyPrefix, daemons, statsd, logLevel, ...options } = config;
  const logger = createLogger({
    name: 'reporter',
    level: logLevel ?? 'info',
    base: { id: config.id, chain: config.chain },
    destination: process.stderr,
  });
  const redis = connectRedis(redisUrl, `reporter-${config.id}`);
  try {
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new StartupError(`redisUrl: cannot reach ${redisUrl}: ${(error as Error).message}`);
  }
  let reporter: Reporter;
  try {
    reporter = await createReporter({
      ...options,
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
  process.stdout.write(`${JSON.stringify({ ready: true, id: reporter.id, endpoint: reporter.endpoint })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
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
