#!/usr/bin/env node
// The stratum master as a bin: what `hashwire run stratum` (so `hashwire up`, Circus and
// systemd) runs for a stratum service. The same JSON config as the stratum bin (file argument
// or HASHWIRE_STRATUM_CONFIG); it binds the miner and agent ports, listens for upgrades on
// `<spoolDir>/control.sock` (mode 0600), and runs the stratum bin of this checkout as its
// worker. Its ready line is the worker's (the master's pid added). SIGTERM/SIGINT drain the
// worker as the stratum bin drains, then exit with its code. A bad config exits 1 with one line.
import { mkdirSync } from 'node:fs';
import { LOG_LEVELS, StartupError, createLogger, readJsonConfig } from '@hashwire/core';
import { type StratumFileOptions, serviceFields } from './bin-config.js';
import { UpgradeError, controlSocketPath, startStratumMaster } from './master.js';
import { checkStratumServiceOptions, stratumListenOptions } from './service.js';

const run = async (): Promise<number> => {
  const config = readJsonConfig({
    envVar: 'HASHWIRE_STRATUM_CONFIG',
    ...(process.argv[2] ? { file: process.argv[2] } : {}),
    requiredText: ['id', 'chain', 'coin', 'network', 'spoolDir'],
  }) as unknown as StratumFileOptions;
  if (config.logLevel !== undefined && !LOG_LEVELS.includes(config.logLevel)) {
    throw new StartupError(`logLevel must be one of ${LOG_LEVELS.join(', ')}`);
  }
  checkStratumServiceOptions(serviceFields(config));
  const logger = createLogger({
    name: 'stratum-master',
    level: config.logLevel ?? 'info',
    base: { id: config.id, chain: config.chain },
    destination: process.stderr,
  });
  mkdirSync(config.spoolDir, { recursive: true });
  const controlPath = controlSocketPath(config.spoolDir);
  const master = await startStratumMaster({
    id: config.id,
    configText: JSON.stringify(config),
    ...stratumListenOptions(serviceFields(config)),
    controlPath,
    logger,
  });
  process.stdout.write(`${JSON.stringify({ ...master.ready, control: controlPath })}\n`);
  // Every SIGTERM/SIGINT after the first is ignored: the worker's drain is under way.
  const stop = () => void master.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return master.done;
};

run().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // The first worker's own failure is on stderr already (its one line): nothing to add.
    if (!(error instanceof UpgradeError && error.workerSaid)) {
      const message = String((error as Error)?.message ?? error).replace(/\s*\n\s*/g, ' ');
      process.stderr.write(`stratum: ${message}\n`);
    }
    process.exitCode = 1;
  },
);
