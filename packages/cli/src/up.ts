import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HaproxyRuntime, renderHaproxy } from '@hashwire/confgen';
import {
  ConfigError,
  type PoolConfig,
  chainFronts,
  ensureAdminTokenFile,
  haproxyProcesses,
  loadPoolConfig,
} from '@hashwire/core';
import { listServices } from '@hashwire/registry';
import { type HaproxyFollowers, startHaproxyFollowers } from './haproxy-followers.js';
import {
  SERVICE_RUN_KINDS,
  apiPublicUrl,
  checkPoolSecrets,
  haproxyBackends,
  haproxyRenderInput,
  poolRedis,
  redisLabel,
  serviceConfigs,
} from './pool.js';
import { type Registry, openRegistry } from './status.js';
import { type ProcessSpec, ProcessStartError, type Supervised, Supervisor, pidAlive } from './supervisor.js';

export const upUsage = `usage: hashwire up [--config FILE] [--set key=value ...] [--log-dir DIR]

Runs the pool of the config file on this machine: HAProxy (when haproxy.enabled) with its
backends kept equal to the live stratum servers and api instances, and the configured number of
jobmanagers, reporters, stratum servers, api instances and payers (payer.count for each chain
with payments), each a child process (\`hashwire run <kind> --instance N\`) with its log in DIR. A child that crashes is restarted with a backoff; one
that exits 0 on its own (after \`hashwire drain\`) is restarted at once. SIGINT/SIGTERM stop
everything in order: stratum servers drain, api instances and payers leave (a payment under way
is recorded first), reporters flush,
jobmanagers hand over, then HAProxy. A bad config
names every bad key and starts nothing (exit 1).

  --config FILE    the pool config (.toml, .yaml, .json); env HASHWIRE_A__B and --set override it
  --set key=value  override one key, e.g. --set stratum.count=3 (repeatable)
  --log-dir DIR    the children's logs (default circus.logDir of the config, var/log)`;

/** The built CLI entry the children run (`src/` under vitest and `dist/` both resolve here). */
const CLI_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

/**
 * Stop order, a step at a time; each kind's time between the stop signal and SIGKILL is
 * `circus.gracefulTimeoutS`. The first step goes while HAProxy still follows the registry.
 */
const STOP_STEPS = [['stratum', 'api', 'payouts'], ['reporter'], ['jobmanager'], ['haproxy']] as const;

export interface StartPoolOptions {
  pool: PoolConfig;
  /** What every child gets to derive the same config: `--config F` and the `--set`s. */
  configArgs: readonly string[];
  logDir: string;
  write: (line: string) => void;
  /** @defaultValue 30_000 */
  readyTimeoutMs?: number;
  /** Restart children that exit on their own. @defaultValue true */
  restart?: boolean;
}

export interface RunningPool {
  readonly supervisor: Supervisor;
  readonly registry: Registry;
  /** HAProxy and its runtime API, when it runs. */
  readonly haproxy?: { process: Supervised; runtime: HaproxyRuntime; configFile: string };
  readonly services: readonly Supervised[];
  /** Stops everything in order (stratum, reporter, jobmanager, HAProxy) and closes Redis. */
  stop(): Promise<void>;
  /** Every process id started, across restarts, still alive. */
  alive(): number[];
}

/** `haproxy -c` on the rendered file, so a bad one is refused with HAProxy's own words before anything starts. */
export async function checkHaproxyConfig(binary: string, file: string): Promise<void> {
  const output = await new Promise<string | undefined>((done) => {
    execFile(binary, ['-c', '-f', file], (error, stdout, stderr) =>
      done(error ? `${stdout}${stderr}`.trim() || error.message : undefined),
    );
  });
  if (output !== undefined) throw new ProcessStartError(`haproxy rejected ${file}:\n${output}`);
}

async function startHaproxy(
  pool: PoolConfig,
  registry: Registry,
  supervisor: Supervisor,
  readyTimeoutMs: number,
): Promise<{ process: Supervised; runtime: HaproxyRuntime; configFile: string }> {
  const { haproxy } = pool;
  // Stratum servers and api instances already registered (other machines, or an earlier run)
  // are rendered in; the followers add the rest as they come.
  const live = [
    ...(await listServices(registry.redis, registry.keys, 'stratum')),
    ...(await listServices(registry.redis, registry.keys, 'api')),
  ];
  const configFile = haproxy.configFile;
  await mkdir(dirname(configFile), { recursive: true });
  await mkdir(dirname(haproxy.statsSocket), { recursive: true });
  await writeFile(configFile, renderHaproxy(haproxyRenderInput(pool, live)));
  await checkHaproxyConfig(haproxy.binary, configFile);
  const runtime = new HaproxyRuntime({ socketPath: haproxy.statsSocket });
  const masterSocket = haproxy.masterSocket;
  await mkdir(dirname(masterSocket), { recursive: true });
  const spec: ProcessSpec = {
    name: 'haproxy',
    kind: 'haproxy',
    command: haproxy.binary,
    // Master-worker: the supervised process is the master, which stays across reloads
    // (`reload` on the master CLI); its worker serves the listeners and the stats socket.
    args: ['-W', '-db', '-S', `${masterSocket},mode,600`, '-f', configFile],
    // This master (not an older one's leftover socket) runs a worker, and that worker answers
    // on the stats socket with its own pid.
    ready: async (pid) => {
      const { master, workers } = await haproxyProcesses(masterSocket);
      const worker = workers[0];
      if (master.pid !== pid || !worker) return false;
      return new RegExp(`^Pid: ${worker.pid}$`, 'm').test(await runtime.command('show info'));
    },
    readyTimeoutMs,
    // A soft stop: the master passes it to its workers, which close their listeners and exit
    // once their last connection is gone; the master follows its last worker.
    stopSignal: 'SIGUSR1',
    stopDeadlineMs: 5_000,
  };
  return { process: await supervisor.start(spec), runtime, configFile };
}

/**
 * Starts the pool: HAProxy and its follower first (so the first stratum server is in the
 * backend as soon as it registers), then jobmanagers and reporters, then stratum servers.
 * If anything fails to start, what started is stopped and the error is thrown.
 */
export async function startPool(options: StartPoolOptions): Promise<RunningPool> {
  const { pool, write } = options;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const services = serviceConfigs(pool);
  const secretIssues = checkPoolSecrets(pool, SERVICE_RUN_KINDS);
  if (secretIssues.length > 0) throw new ConfigError(secretIssues);
  // Made once here rather than by the children racing to: `hashwire drain` reads the same file.
  ensureAdminTokenFile(pool.http.adminTokenFile);
  const registry = await openRegistry(
    { redis: poolRedis(pool), label: redisLabel(pool), prefix: pool.redis.keyPrefix },
    'hashwire-up',
  );
  await mkdir(options.logDir, { recursive: true });
  const supervisor = new Supervisor({
    logDir: options.logDir,
    logMaxBytes: pool.circus.logMaxMB * 1024 * 1024,
    logKeep: pool.circus.logKeep,
    write,
  });
  let haproxy: RunningPool['haproxy'];
  let followers: HaproxyFollowers | undefined;
  const started: Supervised[] = [];

  const stop = async () => {
    const [first, ...rest] = STOP_STEPS;
    // Stratum servers drain while HAProxy still follows the registry (their state turns
    // `draining` and HAProxy stops sending them miners), api instances leave it (HAProxy stops
    // sending them requests), then the follower goes, then the rest, HAProxy last.
    await supervisor.stopKinds(first);
    await followers?.close();
    followers = undefined;
    for (const step of rest) await supervisor.stopKinds(step);
    registry.close();
  };

  try {
    if (pool.haproxy.enabled) {
      haproxy = await startHaproxy(pool, registry, supervisor, readyTimeoutMs);
      // One backend per chain, each following that chain's stratum servers.
      followers = startHaproxyFollowers({
        pool,
        registry,
        runtime: haproxy.runtime,
        write: (line) => write(`haproxy: ${line}`),
      });
      const fronts = new Map(chainFronts(pool).map((f) => [f.chain, f]));
      await followers.synced;
      for (const { chain, backend } of haproxyBackends(pool)) {
        const front = fronts.get(chain);
        const tls = front?.tlsBind ? ` and stratum+ssl on ${front.tlsBind}` : '';
        const which = pool.chains.length > 1 ? `${chain}: ` : '';
        write(
          `haproxy: ${which}stratum+tcp on ${front?.bind}${tls}, backend ${backend} follows the registry`,
        );
      }
      if (pool.api.count > 0)
        write(`haproxy: api on ${apiPublicUrl(pool)}, backend ${pool.api.backend} follows the registry`);
    }
    const spec = (s: (typeof services)[number]): ProcessSpec => ({
      name: s.id,
      kind: s.kind,
      command: process.execPath,
      args: [CLI_BIN, 'run', s.kind, '--instance', String(s.instance), ...options.configArgs],
      readyTimeoutMs,
      stopDeadlineMs: pool.circus.gracefulTimeoutS[s.kind] * 1000,
      restart: options.restart ?? true,
    });
    const startKinds = async (kinds: readonly string[]) => {
      const results = await Promise.allSettled(
        services.filter((s) => kinds.includes(s.kind)).map((s) => supervisor.start(spec(s))),
      );
      for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    };
    // Jobs and share intake exist before the first miner can arrive. The api needs only Redis;
    // the payers Redis and their wallet's daemon.
    await startKinds(['jobmanager', 'reporter', 'api', 'payouts']);
    await startKinds(['stratum']);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    supervisor,
    registry,
    ...(haproxy ? { haproxy } : {}),
    services: started,
    stop,
    alive: () => supervisor.processes.flatMap((p) => p.pids).filter(pidAlive),
  };
}

/** The pool config of `--config`/`--set`/env, or every problem with its key and exit 1. */
function loadOrReport(
  file: string | undefined,
  sets: readonly string[],
  command: string,
): PoolConfig | undefined {
  try {
    const pool = loadPoolConfig({ ...(file ? { file } : {}), sets });
    serviceConfigs(pool); // coin, network and payout addresses are checked here
    const secretIssues = checkPoolSecrets(pool, SERVICE_RUN_KINDS);
    if (secretIssues.length > 0) throw new ConfigError(secretIssues);
    return pool;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(
      `hashwire ${command}: the config is not valid, nothing was started:\n${error.message}\n`,
    );
    return undefined;
  }
}

/** `hashwire up`: runs the pool until SIGINT/SIGTERM; 0 when it stopped and left no process. */
export async function upCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      set: { type: 'string', multiple: true },
      'log-dir': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${upUsage}\n`);
    return 0;
  }
  const sets = values.set ?? [];
  const file = values.config === undefined ? undefined : resolve(values.config);
  const pool = loadOrReport(file, sets, 'up');
  if (!pool) return 1;
  const write = (line: string) => process.stdout.write(`${line}\n`);
  const logDir = resolve(values['log-dir'] ?? pool.circus.logDir);
  const configArgs = [...(file ? ['--config', file] : []), ...sets.flatMap((s) => ['--set', s])];

  const stopRequested = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested.signal.aborted) return;
    write(`${signal}: stopping (stratum servers drain first)`);
    stopRequested.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    write(`hashwire up: ${file ?? 'embedded defaults'}, redis ${redisLabel(pool)}, logs in ${logDir}`);
    let running: RunningPool;
    try {
      running = await startPool({ pool, configArgs, logDir, write });
    } catch (error) {
      // Whatever started was stopped; the operator gets the reason, not a stack.
      process.stderr.write(`hashwire up: ${(error as Error).message}\n`);
      return 1;
    }
    const count = (kind: string) => running.services.filter((s) => s.spec.kind === kind).length;
    const payers = count('payouts');
    const counts = [
      ...['jobmanager', 'reporter', 'stratum', 'api'].map((kind) => `${count(kind)} ${kind}`),
      // Only a pool with a chain that pays has payers (chains[].payments).
      ...(payers > 0 ? [`${payers} payer${payers === 1 ? '' : 's'} (payouts)`] : []),
    ].join(', ');
    const where = chainFronts(pool)
      .map((f) => `stratum+tcp://${f.bind}${pool.chains.length > 1 ? ` (${f.chain})` : ''}`)
      .join(', ');
    const api = running.haproxy && pool.api.count > 0 ? `; the API is at ${apiPublicUrl(pool)}` : '';
    write(`pool up: ${counts}${running.haproxy ? `; miners connect to ${where}` : ''}${api}; Ctrl-C stops`);
    if (!stopRequested.signal.aborted) {
      await new Promise((resolveStop) =>
        stopRequested.signal.addEventListener('abort', resolveStop, { once: true }),
      );
    }
    await running.stop();
    const left = running.alive();
    write(
      left.length === 0
        ? 'hashwire up: stopped, no process left'
        : `hashwire up: still running: pids ${left.join(', ')}`,
    );
    return left.length === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
