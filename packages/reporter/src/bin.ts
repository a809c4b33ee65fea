#!/usr/bin/env node
// Thin entry: the services' bin scaffold (`runServiceBin`: JSON config from
// HASHWIRE_REPORTER_CONFIG or a file path as the first argument, Redis PING, one `ready` line on
// stdout, logs on stderr, a bad config exits 1 with one line naming the field) around one
// reporter. SIGTERM/SIGINT drain: new batches answered Unavailable so stratum servers fail over,
// batches being written finish, the reporter leaves discovery; then exit 0.
import type { DaemonClientOptions } from '@hashwire/chain';
import { type LogLevel, StartupError, type StatsdOptions, runServiceBin } from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, openServiceRedis } from '@hashwire/registry';
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

runServiceBin<ReporterFileOptions, RedisClient, Reporter>({
  name: 'reporter',
  envVar: 'HASHWIRE_REPORTER_CONFIG',
  requiredText: ['id', 'chain'],
  check(config) {
    if (config.daemons !== undefined && !Array.isArray(config.daemons))
      throw new StartupError('daemons must be an array of { url, cookieFile? | user?, password? }');
  },
  openRedis: openServiceRedis,
  async create(config, { redis, logger, secrets, requestStop }) {
    const {
      redisUrl: _url,
      redis: _redis,
      keyPrefix,
      daemons,
      statsd,
      logLevel: _logLevel,
      curve: _curve,
      adminTokenFile: _adminTokenFile,
      adminToken: _adminToken,
      ...options
    } = config;
    return createReporter({
      ...options,
      onDrain: requestStop,
      ...(secrets.curve ? { curve: secrets.curve as ReporterOptions['curve'] & object } : {}),
      ...(secrets.adminToken ? { adminToken: secrets.adminToken } : {}),
      redis,
      keys: createKeyBuilder({ prefix: keyPrefix ?? 'hw:' }),
      ...(daemons ? { daemons } : {}),
      ...(statsd ? { metrics: { statsd } } : {}),
      logger,
    });
  },
  ready: (reporter, _config, secrets) => ({
    endpoint: reporter.endpoint,
    curve: secrets.curve !== undefined,
  }),
});
