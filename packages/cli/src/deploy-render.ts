import { constants, accessSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { CircusRenderInput, CircusWatcher, SystemdRenderInput, SystemdService } from '@hashwire/confgen';
import type { PoolConfig } from '@hashwire/core';
import { type CircusPaths, circusRenderInput, serviceConfigs } from './pool.js';

/*
 * The pool config as supervisors other than `hashwire up` run it: Circus watchers (HAProxy and
 * its follower included) and systemd units, with stop deadlines long enough for a drain.
 */

/** Sessions a stratum server is taken to hold for its drain time when `stratum.limits.maxConnections` is 0. */
export const DRAIN_ASSUMED_SESSIONS = 10_000;
/** What a stratum server announces its drain for before the first wave (the bin's drainAnnounceMs). */
const DRAIN_ANNOUNCE_MS = 1000;

/**
 * The longest a stratum server's graceful stop takes, in seconds: the drain announcement, one
 * wave of `drain.waveSize` sessions every `drain.waveIntervalMs` (for `limits.maxConnections`
 * sessions, or DRAIN_ASSUMED_SESSIONS without a limit), the `drain.graceMs` after the last wave
 * and the spool flush (`flushTimeoutMs`).
 */
export function stratumDrainS(pool: PoolConfig): number {
  const { drain, limits, flushTimeoutMs } = pool.stratum;
  const sessions = limits.maxConnections > 0 ? limits.maxConnections : DRAIN_ASSUMED_SESSIONS;
  const waves = Math.ceil(sessions / drain.waveSize);
  const ms =
    DRAIN_ANNOUNCE_MS + Math.max(0, waves - 1) * drain.waveIntervalMs + drain.graceMs + flushTimeoutMs;
  return Math.ceil(ms / 1000);
}

/** A stop deadline with room to spare: a quarter more, at least 15 s. */
function withMargin(seconds: number): number {
  return seconds + Math.max(15, Math.ceil(seconds / 4));
}

/**
 * Seconds between SIGTERM and SIGKILL per kind: the configured deadline (`circus.gracefulTimeoutS`)
 * and, for stratum servers, at least the whole drain; each with a margin.
 */
export function stopTimeoutsS(pool: PoolConfig): {
  jobmanager: number;
  reporter: number;
  stratum: number;
  api: number;
  payouts: number;
} {
  const configured = pool.circus.gracefulTimeoutS;
  return {
    jobmanager: withMargin(configured.jobmanager),
    payouts: withMargin(configured.payouts),
    reporter: withMargin(configured.reporter),
    api: withMargin(configured.api),
    stratum: withMargin(Math.max(configured.stratum, stratumDrainS(pool))),
  };
}

/** `name` as an absolute path found on PATH (and /usr/sbin, where Debian puts haproxy), or as given. */
export function resolveProgram(name: string, path = process.env.PATH ?? ''): string {
  if (name.includes('/')) return name;
  for (const dir of [...path.split(delimiter), '/usr/sbin', '/sbin']) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next directory
    }
  }
  return name;
}

function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

/**
 * The Circus input of `hashwire render circus`: a watcher per service kind and, with
 * `haproxy.enabled`, HAProxy (on the file `hashwire render haproxy` wrote to `haproxy.configFile`)
 * and `hashwire follow-haproxy` keeping its backends equal to the registry.
 */
export function circusDeployInput(pool: PoolConfig, paths: CircusPaths): CircusRenderInput {
  const base = circusRenderInput(pool, paths);
  if (!pool.haproxy.enabled) return base;
  const sets = (paths.sets ?? []).flatMap((set) => ['--set', set]);
  const node = paths.node ?? process.execPath;
  const extra: CircusWatcher[] = [
    {
      kind: 'haproxy',
      // Master-worker with its master CLI: a reload (`reload` there, or SIGUSR2 to the
      // watcher's process, the master) keeps every connection and refuses none.
      cmd: [
        resolveProgram(pool.haproxy.binary),
        '-W',
        '-db',
        '-S',
        `${pool.haproxy.masterSocket},mode,600`,
        '-f',
        pool.haproxy.configFile,
      ]
        .map(shellWord)
        .join(' '),
      numprocesses: 1,
    },
    {
      kind: 'follower',
      name: 'follow-haproxy',
      cmd: [node, paths.cli, 'follow-haproxy', '--config', paths.config, ...sets].map(shellWord).join(' '),
      numprocesses: 1,
    },
  ];
  return { ...base, watchers: [...extra, ...base.watchers] };
}

export interface SystemdPaths extends CircusPaths {
  /** Run the services as this user. @defaultValue root (no User=) */
  user?: string;
  /** The services' working directory (absolute). @defaultValue the config's circus.workingDir */
  workingDir?: string;
}

/** The unit name of a service instance, e.g. `hashwire-stratum-litecoin-1`. */
export const unitOf = (id: string) => `hashwire-${id}`;
export const FOLLOWER_UNIT = 'hashwire-follow-haproxy';

/**
 * The systemd input of `hashwire render systemd`: a unit per service instance of the config
 * and, with `haproxy.enabled`, one for `hashwire follow-haproxy` (HAProxy itself is Debian's
 * haproxy.service on the rendered haproxy.cfg). Stratum servers start after every other unit,
 * so they stop first.
 */
export function systemdRenderInput(pool: PoolConfig, paths: SystemdPaths): SystemdRenderInput {
  const node = paths.node ?? process.execPath;
  const sets = (paths.sets ?? []).flatMap((set) => ['--set', set]);
  const timeouts = stopTimeoutsS(pool);
  const instances = serviceConfigs(pool);
  const follower = pool.haproxy.enabled;
  const before = [
    ...instances.filter((s) => s.kind !== 'stratum').map((s) => unitOf(s.id)),
    ...(follower ? [FOLLOWER_UNIT] : []),
  ];
  const services: SystemdService[] = instances.map((s) => ({
    name: unitOf(s.id),
    description: `hashwire ${s.kind} ${s.id} (${s.chain ? `chain ${s.chain}` : 'every chain'})`,
    exec: [
      node,
      paths.cli,
      'run',
      s.kind,
      '--instance',
      String(s.instance),
      '--config',
      paths.config,
      ...sets,
    ],
    timeoutStopSec: timeouts[s.kind],
    afterExternal: ['redis-server.service'],
    ...(s.kind === 'stratum' && { after: before }),
  }));
  if (follower) {
    services.unshift({
      name: FOLLOWER_UNIT,
      description:
        "hashwire HAProxy follower (keeps HAProxy's stratum and api backends equal to the registry)",
      exec: [node, paths.cli, 'follow-haproxy', '--config', paths.config, ...sets],
      timeoutStopSec: withMargin(5),
      afterExternal: ['redis-server.service', 'haproxy.service'],
    });
  }
  return {
    workingDir: paths.workingDir ?? pool.circus.workingDir,
    ...(paths.user !== undefined && { user: paths.user }),
    services,
  };
}
