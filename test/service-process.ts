import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The built entry of each service (run `pnpm tsc -b` first, as for the jobmanager tests). */
export const serviceBins = {
  jobmanager: fileURLToPath(new URL('../packages/jobmanager/dist/bin.js', import.meta.url)),
  stratum: fileURLToPath(new URL('../packages/stratum/dist/bin.js', import.meta.url)),
  reporter: fileURLToPath(new URL('../packages/reporter/dist/bin.js', import.meta.url)),
  payouts: fileURLToPath(new URL('../packages/payouts/dist/bin.js', import.meta.url)),
} as const;

/** The stratum master's built entry (what `hashwire run stratum` runs): `spawnService(…, { bin })`. */
export const stratumMasterBin = fileURLToPath(
  new URL('../packages/stratum/dist/master-bin.js', import.meta.url),
);

/** The api's built entry: it runs beside the pool's services (`spawnApi`). */
const apiBin = fileURLToPath(new URL('../packages/api/dist/bin.js', import.meta.url));

const CONFIG_ENV: Record<keyof typeof serviceBins, string> = {
  jobmanager: 'HASHWIRE_JOBMANAGER_CONFIG',
  stratum: 'HASHWIRE_STRATUM_CONFIG',
  reporter: 'HASHWIRE_REPORTER_CONFIG',
  payouts: 'HASHWIRE_PAYOUTS_CONFIG',
};

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  readonly kind: keyof typeof serviceBins;
  readonly child: ChildProcess;
  /** The `ready` line the service printed. */
  readonly ready: Record<string, unknown> & { ready: true; id: string };
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  /** The last stderr lines (logs), for a failure message. */
  logs(): string;
}

/**
 * Runs a service's bin with its JSON config and resolves on its `ready` line; rejects with the
 * service's own message if it exits first, or with its logs if no ready line comes within
 * `readyTimeoutMs` (default 60 s; the process is killed). Logs (stderr) are kept, the last 200 lines.
 */
export async function spawnService(
  kind: keyof typeof serviceBins,
  config: Record<string, unknown>,
  options: { readyTimeoutMs?: number; bin?: string } = {},
): Promise<ServiceProcess> {
  return {
    kind,
    ...(await spawnBin(kind, options.bin ?? serviceBins[kind], CONFIG_ENV[kind], config, options)),
  };
}

/** An api process (`packages/api/dist/bin.js`), as `spawnService` runs the others. */
export type ApiProcess = Omit<ServiceProcess, 'kind'>;
export function spawnApi(
  config: Record<string, unknown>,
  options: { readyTimeoutMs?: number } = {},
): Promise<ApiProcess> {
  return spawnBin('api', apiBin, 'HASHWIRE_API_CONFIG', config, options);
}

async function spawnBin(
  kind: string,
  bin: string,
  configEnv: string,
  config: Record<string, unknown>,
  options: { readyTimeoutMs?: number },
): Promise<ApiProcess> {
  const child = spawn(process.execPath, [bin], {
    env: { ...process.env, [configEnv]: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    tail.push(line);
    if (tail.length > Number(process.env.HASHWIRE_TEST_LOG_LINES ?? 200)) tail.shift();
  });
  // 'close' comes after the output is read to its end, so the logs are complete by then.
  const exited = new Promise<Exit>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const lines = createInterface({ input: child.stdout! });
  let timer: NodeJS.Timeout | undefined;
  const first = await Promise.race([
    once(lines, 'line').then(([line]) => line as string),
    exited.then((exit) => exit),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), options.readyTimeoutMs ?? 60_000);
    }),
  ]);
  clearTimeout(timer);
  if (first === 'timeout') {
    child.kill('SIGKILL');
    await exited;
    throw new Error(
      `${kind} ${String(config.id)} printed no ready line within ${options.readyTimeoutMs ?? 60_000} ms: ${tail.join('\n')}`,
    );
  }
  if (typeof first !== 'string') {
    throw new Error(
      `${kind} ${String(config.id)} exited (${first.code ?? first.signal}) before ready: ${tail.join('\n')}`,
    );
  }
  const ready = JSON.parse(first) as ServiceProcess['ready'];
  return { child, ready, exited, logs: () => tail.join('\n') };
}

/** SIGKILLs it (SIGCONT first, in case it was frozen) unless it already exited. */
export async function killService(service: Pick<ServiceProcess, 'child' | 'exited'>): Promise<Exit> {
  if (service.child.exitCode === null && service.child.signalCode === null) {
    service.child.kill('SIGCONT');
    service.child.kill('SIGKILL');
  }
  return service.exited;
}

/** Where the services' Redis is: a URL, or the seed nodes of a Redis Cluster. */
export type TestRedis = string | { cluster: readonly { host: string; port: number }[] };

/** The config fields for `redis`: `redisUrl`, or `redis: { cluster }`. */
function redisFields(redis: TestRedis): Record<string, unknown> {
  return typeof redis === 'string' ? { redisUrl: redis } : { redis: { cluster: redis.cluster } };
}

/** A jobmanager's JSON config for a litecoin regtest pair from testkit, as the integration tests run it. */
export function regtestJobmanagerConfig(options: {
  id: string;
  keyPrefix: string;
  redisUrl: TestRedis;
  payout: string;
  nodes: readonly { rpcUrl: string; cookieFile: string }[];
  extra?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    id: options.id,
    coin: 'litecoin',
    network: 'regtest',
    daemons: options.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
    payouts: [{ address: options.payout }],
    ...redisFields(options.redisUrl),
    keyPrefix: options.keyPrefix,
    heartbeatIntervalMs: 250,
    pollIntervalMs: 100,
    ...options.extra,
  };
}

/** A reporter's JSON config for a litecoin regtest pair from testkit, as the integration tests run it. */
export function regtestReporterConfig(options: {
  id: string;
  keyPrefix: string;
  redisUrl: TestRedis;
  nodes: readonly { rpcUrl: string; cookieFile: string }[];
  extra?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    id: options.id,
    chain: 'litecoin-regtest',
    ...redisFields(options.redisUrl),
    keyPrefix: options.keyPrefix,
    daemons: options.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
    blockPollMs: 2000,
    heartbeatIntervalMs: 250,
    serviceTtlMs: 3000,
    shareLogMaxBatches: 1_000_000,
    // The checks read every credited share back from the share log: keep it for the whole test.
    shareLogRetentionS: 86_400,
    logLevel: 'warn',
    ...options.extra,
  };
}

/** A stratum server's JSON config on litecoin regtest, as the integration tests run it. */
export function regtestStratumConfig(options: {
  id: string;
  keyPrefix: string;
  redisUrl: TestRedis;
  spoolDir: string;
  /** 0 for any free port; a restart passes the port it had, so its miners come back to it. */
  port: number;
  /** Every miner's share difficulty (vardiff off). */
  diff: number;
  /** Merged over the forwarder settings below. */
  forwarder?: Record<string, unknown>;
  extra?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    id: options.id,
    chain: 'litecoin-regtest',
    coin: 'litecoin',
    network: 'regtest',
    ...redisFields(options.redisUrl),
    keyPrefix: options.keyPrefix,
    spoolDir: options.spoolDir,
    host: '127.0.0.1',
    port: options.port,
    vardiff: { enabled: false, initialDifficulty: options.diff },
    jobFeed: { heartbeatIntervalMs: 250, reconcileMs: 250 },
    forwarder: {
      heartbeatIntervalMs: 250,
      reconcileMs: 250,
      requestTimeoutMs: 2000,
      retryDelayMs: 100,
      maxRetryDelayMs: 1000,
      ...options.forwarder,
    },
    serviceTtlMs: 3000,
    logLevel: 'warn',
    ...options.extra,
  };
}
