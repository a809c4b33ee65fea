import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderHaproxy } from '@hashwire/confgen';
import { type HaproxyReload, haproxyProcesses, reloadHaproxy } from '@hashwire/core';
import { PoolUsageError, poolArgOptions, withPool } from './config-cmd.js';
import { haproxyRenderInput, redisLabel } from './pool.js';
import { liveStratumServers } from './render.js';
import { checkHaproxyConfig } from './up.js';

export const reloadUsage = `usage: hashwire reload haproxy [--config FILE] [--set key=value ...] [--timeout SECONDS] [--json]

Reloads HAProxy without closing or refusing a connection: renders haproxy.cfg with the stratum
servers and api instances live in the registry into haproxy.configFile (checked with haproxy -c
first; a file HAProxy rejects is not written), then sends "reload" on HAProxy's master CLI
(haproxy.masterSocket, what "hashwire up" and the Circus watcher start it with; Debian's unit
has /run/haproxy-master.sock). The master re-executes under the same pid; the new worker takes
the listening sockets and starts with every live server in its backend; the old worker keeps
its miners until each disconnects. Exit 0 once the new worker answers; 1 when Redis cannot be
read (a file without the servers would leave new miners nowhere to go until the follower adds
them back), HAProxy rejects the file, or the reload fails (the old worker keeps serving).

  --timeout SECONDS  how long the new worker may take to answer (default 30)
  --json             print the result as JSON (pids, milliseconds, old workers)`;

export async function reloadCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...poolArgOptions,
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(`${reloadUsage}\n`);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'haproxy') {
    throw new PoolUsageError(
      `reload needs "haproxy"${positionals.length > 0 ? `, got "${positionals.join(' ')}"` : ''}`,
    );
  }
  const timeoutS = values.timeout === undefined ? 30 : Number(values.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
    throw new PoolUsageError(`--timeout must be a positive number of seconds, got "${values.timeout}"`);
  }
  return withPool(values, async ({ pool }) => {
    const { configFile, masterSocket, binary } = pool.haproxy;
    const fail = (message: string) => {
      process.stderr.write(`reload: haproxy not reloaded: ${message}\n`);
      return 1;
    };
    const live = await liveStratumServers(pool);
    if (live instanceof Error) {
      return fail(
        `cannot read the registry at ${redisLabel(pool)} (${live.message.replace(/^cannot reach Redis at \S+: /, '')}): a file without the live servers would leave new miners nowhere to go until the follower adds them back`,
      );
    }
    const temporary = `${configFile}.${process.pid}.tmp`;
    writeFileSync(temporary, renderHaproxy(haproxyRenderInput(pool, live)));
    try {
      await checkHaproxyConfig(binary, temporary);
    } catch (error) {
      rmSync(temporary, { force: true });
      return fail((error as Error).message);
    }
    renameSync(temporary, configFile);
    let result: HaproxyReload;
    try {
      result = await reloadHaproxy(masterSocket, { timeoutMs: timeoutS * 1000 });
    } catch (error) {
      return fail((error as Error).message);
    }
    const servers = live.filter((s) => s.kind === 'stratum').length;
    const old = (await haproxyProcesses(masterSocket).catch(() => undefined))?.oldWorkers ?? [];
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ ...result, configFile, stratumServers: servers, oldWorkers: old.map((w) => w.pid) })}\n`,
      );
      return 0;
    }
    const leaving =
      old.length > 0
        ? `; old workers ${old.map((w) => w.pid).join(', ')} keep their connections and leave with the last one`
        : '';
    process.stdout.write(
      `reload: haproxy master ${result.masterPid} reloaded on ${configFile} (${servers} stratum server${servers === 1 ? '' : 's'}) in ${result.tookMs} ms: worker ${result.workerPid} serves${leaving}\n`,
    );
    return 0;
  });
}
