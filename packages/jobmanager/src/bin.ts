#!/usr/bin/env node
// Thin entry: the services' bin scaffold (`runServiceBin`: JSON config from
// HASHWIRE_JOBMANAGER_CONFIG or a file path as the first argument, Redis PING, one `ready` line
// on stdout, logs on stderr, a bad config exits 1 with one line naming the field) around one
// jobmanager. SIGTERM/SIGINT (and POST /drain) hand the lease to a standby, then exit 0.
import { type LogLevel, runServiceBin } from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, openServiceRedis } from '@hashwire/registry';
import { type JobManager, createJobManager } from './jobmanager.js';
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

runServiceBin<FileOptions, RedisClient, JobManager>({
  name: 'jobmanager',
  envVar: 'HASHWIRE_JOBMANAGER_CONFIG',
  requiredText: ['id', 'coin', 'network'],
  // The jobmanager's own child logger adds id and chain.
  logBase: () => ({}),
  openRedis: openServiceRedis,
  async create(config, { redis, logger, secrets, requestStop }) {
    const {
      redisUrl: _url,
      redis: _redis,
      curve: _curve,
      adminTokenFile: _adminTokenFile,
      adminToken: _adminToken,
      logLevel: _logLevel,
      keyPrefix,
      ...options
    } = config;
    const jm = await createJobManager({
      ...options,
      redis,
      keys: createKeyBuilder({ prefix: keyPrefix ?? 'hw:' }),
      logger,
      onDrain: requestStop,
      ...(secrets.curve ? { curve: secrets.curve as JobManagerOptions['curve'] & object } : {}),
      ...(secrets.adminToken ? { adminToken: secrets.adminToken } : {}),
    });
    logger.info(
      { id: jm.id, chain: jm.chain, endpoint: jm.endpoint, version: jm.stats().version },
      'jobmanager: started',
    );
    return jm;
  },
  ready: (jm, _config, secrets) => ({ endpoint: jm.endpoint, curve: secrets.curve !== undefined }),
});
