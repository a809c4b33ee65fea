import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderCircus, renderHaproxy, renderSystemd } from '@hashwire/confgen';
import type { PoolConfig } from '@hashwire/core';
import { blocknotifyCommand } from '@hashwire/jobmanager';
import { createKeyBuilder } from '@hashwire/protocol';
import { type ServiceInfo, listServices } from '@hashwire/registry';
import { PoolUsageError, poolArgOptions, withPool } from './config-cmd.js';
import { circusDeployInput, stopTimeoutsS, systemdRenderInput } from './deploy-render.js';
import { haproxyRenderInput, poolRedis, redisLabel } from './pool.js';
import { openRegistry } from './status.js';

export const renderUsage = `usage: hashwire render haproxy|circus|systemd|blocknotify [--config FILE] [--set PATH=VALUE ...] [--out FILE] [--offline] [--out-dir DIR] [--user USER]

  haproxy      haproxy.cfg from the config and the stratum servers and api instances live in the
               registry now (with api.count, an HTTP frontend on api.bind for the api);
               when Redis cannot be reached it says so, renders with no servers and exits 1
  circus       circus.ini: one watcher per service kind running "hashwire run <kind> --instance N"
               with this --config (required) and these --set flags and, with haproxy.enabled,
               HAProxy on haproxy.configFile (render it first: render haproxy --offline --out
               FILE) and "hashwire follow-haproxy" keeping its backends equal to the registry
  systemd      one unit per service instance (hashwire-<id>.service), hashwire-follow-haproxy.service
               with haproxy.enabled, and hashwire.target, into --out-dir DIR (required); stop
               timeouts cover a stratum server's whole drain (systemd's default 90 s does not)
  blocknotify  the -blocknotify line for each chain's coin daemons (litecoin.conf, bitcoin.conf):
               redis-cli publishes the block hash on the chain's channel, which every jobmanager
               of the chain with blocknotify = true listens on

  --out FILE     write there (replaced in one step) instead of printing
  --offline      haproxy: do not read the registry; no servers (HAProxy's follower adds them), exit 0
  --out-dir DIR  systemd: the folder the unit files are written to
  --user USER    systemd: run the services as USER (default root)`;

/** The CLI entry as Circus should run it: the built one beside this package. */
const CLI_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

function output(text: string, out: string | undefined): void {
  if (!out) {
    process.stdout.write(text);
    return;
  }
  const temporary = `${out}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, out);
  process.stderr.write(`render: wrote ${out}\n`);
}

export async function liveStratumServers(pool: PoolConfig): Promise<ServiceInfo[] | Error> {
  try {
    const target = { redis: poolRedis(pool), label: redisLabel(pool), prefix: pool.redis.keyPrefix };
    const registry = await openRegistry(target, 'hashwire-render');
    try {
      return [
        ...(await listServices(registry.redis, registry.keys, 'stratum')),
        ...(await listServices(registry.redis, registry.keys, 'api')),
      ];
    } finally {
      registry.close();
    }
  } catch (error) {
    return error as Error;
  }
}

/** One `blocknotify=` line per chain, for its daemons' config file. */
function blocknotifyLines(pool: PoolConfig): string {
  const keys = createKeyBuilder({ prefix: pool.redis.keyPrefix });
  if (pool.redis.sentinel || pool.redis.cluster) {
    const channels = pool.chains.map((c) => keys.blocknotifyChannel(c.id)).join(', ');
    throw new PoolUsageError(
      `render blocknotify: redis-cli needs one Redis URL, and this config names ${pool.redis.sentinel ? 'Sentinel' : 'a Cluster'}; write the line by hand with the master's URL: blocknotify=redis-cli -u redis://HOST:PORT PUBLISH <channel> %s (channels: ${channels})`,
    );
  }
  const url = pool.redis.url ?? 'redis://127.0.0.1:6379';
  const lines: string[] = [];
  for (const chain of pool.chains) {
    lines.push(
      `# ${chain.id}${chain.blocknotify ? '' : ' (blocknotify = false in the config: its jobmanagers do not listen)'}`,
      `blocknotify=${blocknotifyCommand(url, keys.blocknotifyChannel(chain.id))}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function renderCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...poolArgOptions,
      out: { type: 'string', short: 'o' },
      offline: { type: 'boolean' },
      'out-dir': { type: 'string' },
      user: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(`${renderUsage}\n`);
    return 0;
  }
  const [what, ...extra] = positionals;
  const kinds = ['haproxy', 'circus', 'systemd', 'blocknotify'];
  if (!kinds.includes(what as string) || extra.length > 0) {
    throw new PoolUsageError(
      `render needs haproxy, circus, systemd or blocknotify${what ? `, got "${positionals.join(' ')}"` : ''}`,
    );
  }
  if ((what === 'circus' || what === 'systemd') && !values.config && !process.env.HASHWIRE_CONFIG) {
    throw new PoolUsageError(`render ${what} needs --config FILE: every service runs "hashwire run" with it`);
  }
  if (what === 'systemd' && !values['out-dir']) {
    throw new PoolUsageError('render systemd needs --out-dir DIR: it writes one unit file per service there');
  }
  return withPool(values, async ({ pool, file, sets }) => {
    if (what === 'blocknotify') {
      output(blocknotifyLines(pool), values.out);
      return 0;
    }
    if (what === 'circus') {
      const input = circusDeployInput(pool, { cli: CLI_BIN, config: file as string, sets });
      output(renderCircus(input), values.out);
      // circusd opens every watcher's log file when it loads the file and refuses the watcher
      // (FileNotFoundError) when the directory is missing: make it now.
      mkdirSync(input.logDir, { recursive: true });
      // HAProxy binds its master CLI and stats socket at start and exits when their folder is missing.
      if (pool.haproxy.enabled) {
        for (const socket of [pool.haproxy.masterSocket, pool.haproxy.statsSocket]) {
          mkdirSync(dirname(socket), { recursive: true });
        }
      }
      if (pool.haproxy.enabled && !existsSync(pool.haproxy.configFile)) {
        process.stderr.write(
          `render: the haproxy watcher runs ${pool.haproxy.configFile}, which does not exist yet: hashwire render haproxy --offline --out ${pool.haproxy.configFile}\n`,
        );
      }
      return 0;
    }
    if (what === 'systemd') {
      const dir = resolve(values['out-dir'] as string);
      const units = renderSystemd(
        systemdRenderInput(pool, {
          cli: CLI_BIN,
          config: file as string,
          sets,
          workingDir: resolve(pool.circus.workingDir),
          ...(values.user !== undefined && { user: values.user }),
        }),
      );
      mkdirSync(dir, { recursive: true });
      for (const [name, text] of Object.entries(units)) output(text, join(dir, name));
      const timeouts = stopTimeoutsS(pool);
      process.stderr.write(
        `render: ${Object.keys(units).length} units in ${dir}; TimeoutStopSec: stratum ${timeouts.stratum} s, reporter ${timeouts.reporter} s, jobmanager ${timeouts.jobmanager} s. Install: cp ${dir}/* /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now hashwire.target\n`,
      );
      return 0;
    }
    let servers: ServiceInfo[] = [];
    let code = 0;
    if (!values.offline) {
      const live = await liveStratumServers(pool);
      if (live instanceof Error) {
        process.stderr.write(
          `render: cannot read the registry at ${redisLabel(pool)} (${live.message.replace(/^cannot reach Redis at \S+: /, '')}); rendering with no stratum servers (--offline to mean it)\n`,
        );
        code = 1;
      } else {
        servers = live;
      }
    }
    output(renderHaproxy(haproxyRenderInput(pool, servers)), values.out);
    return code;
  });
}
