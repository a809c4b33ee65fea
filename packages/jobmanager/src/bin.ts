#!/usr/bin/env node
// Thin entry: reads the options as JSON (HASHWIRE_JOBMANAGER_CONFIG, or a file path as the
// first argument), starts a jobmanager, drains on SIGTERM/SIGINT. The operations issue
// replaces this with the pool-wide config loader.
import { readJsonConfig } from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis } from '@hashwire/registry';
import { createJobManager } from './jobmanager.js';
import type { JobManagerOptions } from './options.js';

type FileOptions = Omit<JobManagerOptions, 'redis' | 'keys'> & { redisUrl: string; keyPrefix?: string };

async function main(): Promise<number> {
  const config = readJsonConfig({
    envVar: 'HASHWIRE_JOBMANAGER_CONFIG',
    ...(process.argv[2] ? { file: process.argv[2] } : {}),
    requiredText: ['id', 'coin', 'network', 'redisUrl'],
  }) as unknown as FileOptions;
  const redis = connectRedis(config.redisUrl, config.id);
  let jm: Awaited<ReturnType<typeof createJobManager>>;
  try {
    jm = await createJobManager({
      ...config,
      redis,
      keys: createKeyBuilder({ prefix: config.keyPrefix ?? 'hw:' }),
    });
  } catch (error) {
    // Nothing may keep the process alive after a failed start: it must exit with its message.
    redis.disconnect();
    throw error;
  }
  process.stdout.write(`${JSON.stringify({ ready: true, id: jm.id, endpoint: jm.endpoint })}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => void jm.drain().then(resolve, resolve);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
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
