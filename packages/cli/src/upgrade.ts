import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type UpgradeResult, controlSocketPath, workerBin } from '@hashwire/stratum';
import { PoolUsageError, poolArgOptions, withPool } from './config-cmd.js';
import { serviceConfigs } from './pool.js';

export const upgradeUsage = `usage: hashwire upgrade stratum <service-id> [--build DIR] [--config FILE | --socket PATH] [--timeout SECONDS]

Replaces the stratum code of a running stratum service without closing a miner's connection:
its master (what "hashwire run stratum" runs, so "hashwire up", Circus and systemd) starts a
worker from the build, moves every live session to it with its TCP connection, and lets the
old worker go. The service keeps its PID and its miner port. Asks the master on its control
socket (<spoolDir>/control.sock, mode 0600: only the service's user; run it on the service's
host). Prints what happened. Exit 0 once the new worker serves; 1 if it failed (a new worker
that crashes at start changes nothing: the old one keeps serving, and the reason is printed).

  --build DIR        the checkout whose build to run (default: this one, ${defaultBuild()})
  --config FILE      the pool config, to find the service's spool directory
  --socket PATH      the control socket itself (instead of --config)
  --timeout SECONDS  how long to wait for the switch (default 300)
  --json             print the master's answer as JSON (pids, versions, sessions moved, times)`;

/** The checkout this CLI runs from: `packages/cli/dist/upgrade.js` → the root. */
function defaultBuild(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
}

/** Asks the master on `socketPath`; resolves with its one-line answer. */
export function askMaster(
  socketPath: string,
  request: Record<string, unknown>,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  return new Promise((resolveAnswer, reject) => {
    const socket = createConnection(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from the master within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new Error(
          error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
            ? `no stratum master answers on ${socketPath} (is the service running under "hashwire run stratum" on this host?)`
            : `cannot reach the master on ${socketPath}: ${error.message}`,
        ),
      );
    });
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    createInterface({ input: socket }).once('line', (line) => {
      clearTimeout(timer);
      socket.destroy();
      try {
        resolveAnswer(JSON.parse(line) as Record<string, unknown>);
      } catch {
        reject(new Error(`the master answered something else than JSON: ${line.slice(0, 200)}`));
      }
    });
  });
}

export function describeUpgrade(id: string, r: UpgradeResult): string {
  return `upgrade: stratum ${id} now runs ${r.toVersion} (worker pid ${r.toPid}, from ${r.build}); ${r.moved} sessions moved with their connections from worker ${r.fromPid} (${r.fromVersion}) in ${(r.ms / 1000).toFixed(1)} s, of which the new worker's start took ${(r.startMs / 1000).toFixed(1)} s${pauses(r)}`;
}

function pauses(r: UpgradeResult): string {
  const pause = r.cost?.pauseMs;
  return pause && pause.n > 0
    ? `; a moved session stopped being read for ${pause.p50} ms (median), ${pause.max} ms at most`
    : '';
}

export async function upgradeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...poolArgOptions,
      build: { type: 'string' },
      socket: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(`${upgradeUsage}\n`);
    return 0;
  }
  const [kind, id, ...extra] = positionals;
  if (kind !== 'stratum' || !id || extra.length > 0) {
    throw new PoolUsageError(
      `upgrade needs "stratum <service-id>"${positionals.length > 0 ? `, got "${positionals.join(' ')}"` : ''}`,
    );
  }
  const timeoutS = values.timeout === undefined ? 300 : Number(values.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
    throw new PoolUsageError(`--timeout must be a positive number of seconds, got "${values.timeout}"`);
  }
  const build = resolve(values.build ?? defaultBuild());
  if (!existsSync(workerBin(build))) {
    process.stderr.write(
      `upgrade: no stratum build at ${build}: ${workerBin(build)} is missing (pnpm build)\n`,
    );
    return 1;
  }
  const ask = async (socketPath: string): Promise<number> => {
    let answer: Record<string, unknown>;
    try {
      answer = await askMaster(socketPath, { op: 'upgrade', build }, timeoutS * 1000);
    } catch (error) {
      process.stderr.write(`upgrade: stratum ${id} not upgraded: ${(error as Error).message}\n`);
      return 1;
    }
    if (answer.ok !== true) {
      process.stderr.write(`upgrade: stratum ${id} not upgraded: ${String(answer.error)}\n`);
      return 1;
    }
    process.stdout.write(
      values.json
        ? `${JSON.stringify(answer)}\n`
        : `${describeUpgrade(id, answer as unknown as UpgradeResult)}\n`,
    );
    return 0;
  };
  if (values.socket) return ask(resolve(values.socket));
  return withPool(values, async ({ pool }) => {
    const stratum = serviceConfigs(pool).filter((s) => s.kind === 'stratum');
    const service = stratum.find((s) => s.id === id);
    if (!service) {
      process.stderr.write(
        `upgrade: no stratum service "${id}" in this pool config; ids: ${stratum.map((s) => s.id).join(', ') || 'none'}\n`,
      );
      return 1;
    }
    return ask(controlSocketPath(String(service.config.spoolDir)));
  });
}
