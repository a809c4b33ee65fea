import { parseArgs } from 'node:util';
import {
  type SimAlgorithm,
  type SimMinersStats,
  type SimShareCounters,
  startSimMiners,
} from '@hashwire/testkit';

export const simUsage = `usage: hashwire sim --port P --username ADDR [options]

Runs simulated miners against a stratum server: each worker opens its own connection, speaks
stratum v1 (configure, subscribe, authorize, submit; obeys client.reconnect), really hashes
and submits the shares that meet its difficulty. Prints a status line every few seconds and
a summary at the end.

  --host H                  stratum host (default 127.0.0.1)
  --port P                  stratum port (required)
  --workers N               workers, one connection each (default 1)
  --username ADDR           ADDR.simI for worker I; "{i}" in ADDR is replaced by I instead;
                            a name with a "." already is used as is by every worker (required)
  --password X              (default x)
  --algorithm A             scrypt or sha256d (default scrypt)
  --version-rolling         negotiate BIP310 version rolling
  --suggest-difficulty D    send mining.suggest_difficulty D
  --hashrate H              cap the hash rate of all workers together, hashes per second
  --duration S              stop after S seconds (default: until Ctrl-C or SIGTERM)
  --interval S              seconds between status lines (default 5)`;

/** A bad `hashwire sim` command line (printed as one line, exit code 2). */
export class SimUsageError extends Error {
  override readonly name = 'SimUsageError';
}

export interface SimCommandOptions {
  host: string;
  port: number;
  workers: number;
  username: string;
  password: string;
  algorithm: SimAlgorithm;
  versionRolling: boolean;
  suggestDifficulty?: number;
  hashesPerSecondLimit?: number;
  /** Run this long; without it (and without `signal`) the miners stop at once. @defaultValue until `signal` aborts */
  durationMs?: number;
  /** @defaultValue 5000 */
  intervalMs?: number;
  signal?: AbortSignal;
  /** @defaultValue written to stdout */
  write?: (line: string) => void;
}

function positive(value: string | undefined, flag: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new SimUsageError(
      `--${flag} must be a ${integer ? 'positive integer' : 'number above 0'}, got "${value}"`,
    );
  }
  return n;
}

/** Worker names from --username: `{i}` substituted, else `.simI` appended to a bare address. */
export function simUsername(pattern: string, index: number): string {
  if (pattern.includes('{i}')) return pattern.replaceAll('{i}', String(index));
  return pattern.includes('.') ? pattern : `${pattern}.sim${index}`;
}

/** Parses `hashwire sim` arguments into options; throws SimUsageError naming the flag. */
export function parseSimArgs(argv: string[]): SimCommandOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      workers: { type: 'string', default: '1' },
      username: { type: 'string' },
      password: { type: 'string', default: 'x' },
      algorithm: { type: 'string', default: 'scrypt' },
      'version-rolling': { type: 'boolean', default: false },
      'suggest-difficulty': { type: 'string' },
      hashrate: { type: 'string' },
      duration: { type: 'string' },
      interval: { type: 'string', default: '5' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  const port = positive(values.port, 'port', true);
  if (port === undefined || port > 65535) {
    throw new SimUsageError(
      `--port is required: the stratum server's port (1-65535)${values.port ? `, got "${values.port}"` : ''}`,
    );
  }
  if (!values.username)
    throw new SimUsageError('--username is required: the payout address (ADDR or ADDR.worker)');
  const algorithm = values.algorithm;
  if (algorithm !== 'scrypt' && algorithm !== 'sha256d') {
    throw new SimUsageError(`--algorithm must be scrypt or sha256d, got "${algorithm}"`);
  }
  const suggestDifficulty = positive(values['suggest-difficulty'], 'suggest-difficulty', false);
  const hashesPerSecondLimit = positive(values.hashrate, 'hashrate', false);
  const duration = positive(values.duration, 'duration', false);
  return {
    host: values.host,
    port,
    workers: positive(values.workers, 'workers', true)!,
    username: values.username,
    password: values.password,
    algorithm,
    versionRolling: values['version-rolling'],
    ...(suggestDifficulty !== undefined && { suggestDifficulty }),
    ...(hashesPerSecondLimit !== undefined && { hashesPerSecondLimit }),
    ...(duration !== undefined && { durationMs: Math.round(duration * 1000) }),
    intervalMs: Math.round(positive(values.interval, 'interval', false)! * 1000),
  };
}

/** `hashwire sim`: runs until --duration or SIGINT/SIGTERM; exit code 0 when it stopped cleanly. */
export async function simCommand(argv: string[]): Promise<number> {
  const parsed = parseSimArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(`${simUsage}\n`);
    return 0;
  }
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) return;
    process.stdout.write(`\n${signal}: stopping\n`);
    controller.abort(new Error(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runSim({ ...parsed, signal: controller.signal });
    return 0;
  } catch (err) {
    process.stderr.write(`hashwire sim: ${(err as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function formatHashRate(hashesPerSecond: number): string {
  const units = ['H/s', 'kH/s', 'MH/s', 'GH/s'];
  let value = hashesPerSecond;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

function rejectedText(c: SimShareCounters): string {
  const codes = Object.entries(c.rejectedByCode).map(([code, n]) => `${code}:${n}`);
  return codes.length === 0 ? `${c.rejected}` : `${c.rejected} (${codes.join(' ')})`;
}

function statusLine(stats: SimMinersStats): string {
  const t = stats.total;
  const diffs = [...new Set(stats.workers.map((w) => w.difficulty).filter((d) => d !== null))];
  return [
    `${(t.elapsedMs / 1000).toFixed(0)}s`,
    `${t.authorized}/${t.workers} authorized`,
    `diff ${diffs.length === 0 ? '-' : diffs.length === 1 ? diffs[0] : `${Math.min(...diffs)}..${Math.max(...diffs)}`}`,
    formatHashRate(t.hashesPerSecond),
    `accepted ${t.accepted}`,
    `rejected ${rejectedText(t)}`,
    `no answer ${t.noAnswer}`,
    `block candidates ${t.blockCandidates}`,
    `reconnects ${t.reconnects}`,
  ].join(' · ');
}

function summary(stats: SimMinersStats): string[] {
  const seconds = stats.total.elapsedMs / 1000;
  const lines = stats.workers.map((w) =>
    [
      `  worker ${w.index} ${w.username}`,
      `session ${w.sessionId ?? '-'} en1 ${w.extranonce1 ?? '-'}`,
      `${formatHashRate(seconds > 0 ? w.hashes / seconds : 0)}`,
      `submitted ${w.submitted} accepted ${w.accepted} rejected ${rejectedText(w)}`,
      `stale ${w.stale} duplicate ${w.duplicate} low diff ${w.lowDifficulty} no answer ${w.noAnswer}`,
      `reconnects ${w.reconnects} (resumed ${w.resumes})`,
    ].join(' · '),
  );
  const t = stats.total;
  lines.push(
    `total ${t.workers} workers in ${seconds.toFixed(1)} s: ${formatHashRate(t.hashesPerSecond)}, submitted ${t.submitted}, accepted ${t.accepted}, rejected ${rejectedText(t)}, stale ${t.stale}, duplicate ${t.duplicate}, low diff ${t.lowDifficulty}, no answer ${t.noAnswer}, block candidates ${t.blockCandidates}, reconnects ${t.reconnects}`,
  );
  return lines;
}

/** Starts the miners, writes a status line every `intervalMs`, stops on duration or abort. */
export async function runSim(options: SimCommandOptions): Promise<SimMinersStats> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  write(
    `hashwire sim: ${options.workers} ${options.algorithm} worker${options.workers === 1 ? '' : 's'} -> ${options.host}:${options.port}`,
  );
  const miners = await startSimMiners({
    host: options.host,
    port: options.port,
    workers: options.workers,
    username: (i) => simUsername(options.username, i),
    password: options.password,
    algorithm: options.algorithm,
    versionRolling: options.versionRolling,
    ...(options.suggestDifficulty !== undefined && { suggestDifficulty: options.suggestDifficulty }),
    ...(options.hashesPerSecondLimit !== undefined && { hashesPerSecondLimit: options.hashesPerSecondLimit }),
  });
  miners.on('reconnect', (e) =>
    write(
      `worker ${e.worker}: reconnected to ${e.host}:${e.port} (${e.reason}), session ${e.resumed ? 'resumed' : 'new'}`,
    ),
  );
  const status = setInterval(() => write(statusLine(miners.stats())), options.intervalMs ?? 5000);
  try {
    const signals = [
      options.signal,
      options.durationMs === undefined ? undefined : AbortSignal.timeout(options.durationMs),
    ].filter((s): s is AbortSignal => s !== undefined);
    if (signals.length > 0) {
      const stop = AbortSignal.any(signals);
      if (!stop.aborted)
        await new Promise((resolve) => stop.addEventListener('abort', resolve, { once: true }));
    }
  } finally {
    clearInterval(status);
    await miners.stop();
  }
  const stats = miners.stats();
  for (const line of summary(stats)) write(line);
  return stats;
}
