#!/usr/bin/env node
// Thin entry: the services' bin scaffold (`runServiceBin`: JSON config from
// HASHWIRE_STRATUM_CONFIG or a file path as the first argument, Redis PING, one `ready` line on
// stdout, logs on stderr, a bad config exits 1 with one line naming the field) around one
// stratum service (`createStratumService`). Its spool is the server's share sink and the
// forwarder's source, so a batch leaves the disk only when a reporter has acknowledged it, and
// a restart with the same spoolDir replays what was left. SIGTERM/SIGINT (and POST /drain)
// drain: miners sent away, spool flushed to reporters; then exit 0.
import { runServiceBin } from '@hashwire/core';
import { type RedisClient, openServiceRedis } from '@hashwire/registry';
import { type StratumFileOptions, serviceFields } from './bin-config.js';
import { peerSharesPath } from './peer-shares.js';
import {
  type StratumService,
  type StratumServiceOptions,
  checkStratumServiceOptions,
  createStratumService,
} from './service.js';
import { workerLink, workerSetting } from './worker.js';

runServiceBin<StratumFileOptions, RedisClient, StratumService>({
  name: 'stratum',
  envVar: 'HASHWIRE_STRATUM_CONFIG',
  requiredText: ['id', 'chain', 'coin', 'network', 'spoolDir'],
  // The curve keys are checked once read from their files (in create).
  check: (config) => checkStratumServiceOptions(serviceFields(config)),
  openRedis: openServiceRedis,
  create: async (config, { redis, logger, secrets, requestStop }) => {
    // Under a stratum master (master-bin.ts) the master owns the miner port; on its own, as before.
    const setting = workerSetting();
    const link = setting ? workerLink(setting, logger, peerSharesPath(config.spoolDir)) : null;
    const service = createStratumService({
      ...serviceFields(config),
      redis,
      logger,
      onDrain: requestStop,
      ...(secrets.curve ? { curve: secrets.curve as StratumServiceOptions['curve'] & object } : {}),
      ...(secrets.adminToken ? { adminToken: secrets.adminToken } : {}),
      ...(link ? { worker: link.option } : {}),
    });
    link?.attach(service);
    return service;
  },
  ready: (service, _config, secrets) => ({
    port: service.port,
    curve: secrets.curve !== undefined,
    ...(service.worker ? { version: service.version, pid: process.pid } : {}),
  }),
});
