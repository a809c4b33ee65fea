import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import {
  type Exit,
  type SupervisedProcess,
  endRestarts,
  spawnLogged,
  splitWords,
  stopSupervised,
  supervise,
} from './supervised-process.js';

// A stand-in for systemd, for the tests of the units `hashwire render systemd` writes on machines
// where systemd is not running (PID 1 here is not systemd). It reads unit files the way systemd
// does — sections, `Key=value`, line continuations, drop-ins (`<unit>.d/*.conf`), an empty
// assignment resetting a list, `%` specifiers, `Environment=` and `EnvironmentFile=`
// (systemd.syntax(7) quoting, no `$` expansion there), `ExecStart=` unquoted into words with
// `$VAR`, `${VAR}` and `$$` expanded — and runs a `.target`'s units as systemd does: in `After=`
// order, in `WorkingDirectory=`, with the unit's environment on systemd's own minimal one
// (PATH only: not the caller's), each unit's output (stdout and stderr, as the journal) appended
// to `<logDir>/<unit>.log`, restarted after `RestartSec=` with `Restart=always` (at most
// StartLimitBurst=5 starts in StartLimitIntervalSec=10 s, systemd's defaults). Stopping stops a
// unit only after every unit ordered after it stopped, with `KillSignal=` to the main process
// (`KillMode=mixed`) or to all of it (`control-group`), and SIGKILL to all of it after
// `TimeoutStopSec=`; a unit is stopped once all its processes are gone.
//
// It is not systemd. Not exercised: cgroups (a unit's processes are its process group here, so
// a process that leaves the group escapes; under systemd it cannot), the journal, the
// notification socket (`Type=notify` is started like `Type=simple`: units ordered after it
// start without waiting for READY=1), sandboxing and privilege settings (`NoNewPrivileges=`,
// `BindReadOnlyPaths=` are read and ignored), `User=` (refused), `ExecReload=` (not run: no
// reloads), `systemctl` itself and dependencies beyond ordering (`Wants=` of the target picks
// the units; `PartOf=`, `Requires=` are not propagated). A setting it does not know is refused,
// so a new line in the rendered units is either handled here or listed above.

/** Every assignment of each key, by section, in file order; an empty assignment has reset the list. */
export type UnitSections = Record<string, Record<string, string[]>>;

export interface SystemdUnit {
  /** e.g. `hashwire-stratum-litecoin-regtest-1.service` */
  name: string;
  sections: UnitSections;
}

const KNOWN: Record<string, readonly string[]> = {
  Unit: ['Description', 'Documentation', 'Wants', 'Requires', 'After', 'Before', 'PartOf'],
  Service: [
    'Type',
    'WorkingDirectory',
    'User',
    'Environment',
    'EnvironmentFile',
    'ExecStart',
    'ExecReload',
    'KillSignal',
    'KillMode',
    'TimeoutStopSec',
    'Restart',
    'RestartSec',
    'SuccessExitStatus',
    'NoNewPrivileges',
    'BindReadOnlyPaths',
  ],
  Install: ['WantedBy'],
};

/** Reads a unit file (and then its drop-ins, in order) into `into`, as systemd's unit loader does. */
export function parseUnitFile(text: string, into: UnitSections = {}, source = 'unit'): UnitSections {
  let section: Record<string, string[]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] as string).trim();
    const at = `${source} line ${i + 1}`;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    // A trailing backslash joins the next line (with a space, as systemd does).
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]?.trim()}`;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = header[1] as string;
      if (!(name in KNOWN)) throw new Error(`${at}: section [${name}] is not one this stand-in runs`);
      into[name] ??= {};
      section = into[name];
      continue;
    }
    const pair = /^([A-Za-z0-9]+)\s*=\s*(.*)$/.exec(line);
    if (!pair || !section) throw new Error(`${at}: not a Key=value in a section: ${line}`);
    const [, key, value] = pair as unknown as [string, string, string];
    const sectionName = Object.keys(into).find((n) => into[n] === section) as string;
    if (!KNOWN[sectionName]?.includes(key))
      throw new Error(`${at}: ${key}= in [${sectionName}] is not a setting this stand-in knows`);
    // An empty assignment resets the list (Environment=, ExecStart=, After=, …).
    section[key] = value === '' ? [] : [...(section[key] ?? []), value];
  }
  return into;
}

/** The unit files of `dir` (`*.service`, `*.target`), each with its drop-ins from `<unit>.d/*.conf`. */
export function loadUnits(dir: string): Map<string, SystemdUnit> {
  const units = new Map<string, SystemdUnit>();
  for (const file of readdirSync(dir).sort()) {
    if (!/\.(service|target)$/.test(file)) continue;
    const sections = parseUnitFile(readFileSync(join(dir, file), 'utf8'), {}, file);
    const dropIns = join(dir, `${file}.d`);
    if (existsSync(dropIns)) {
      for (const conf of readdirSync(dropIns)
        .sort()
        .filter((f) => f.endsWith('.conf'))) {
        parseUnitFile(readFileSync(join(dropIns, conf), 'utf8'), sections, `${file}.d/${conf}`);
      }
    }
    units.set(file, { name: file, sections });
  }
  return units;
}

/** The `%` specifiers systemd.unit(5) defines that a unit of this stand-in may use. */
export function expandSpecifiers(value: string, unit: string): string {
  const prefix = unit.replace(/\.[^.]+$/, '');
  return value.replace(/%(.)/g, (whole, c: string) => {
    if (c === '%') return '%';
    if (c === 'n') return unit;
    if (c === 'N' || c === 'p') return prefix;
    throw new Error(`${unit}: specifier ${whole} is not one this stand-in expands`);
  });
}

/** A single-valued setting: its last assignment, specifiers expanded. */
function setting(unit: SystemdUnit, section: string, key: string): string | undefined {
  const values = unit.sections[section]?.[key];
  const last = values?.[values.length - 1];
  return last === undefined ? undefined : expandSpecifiers(last, unit.name);
}

/** A list setting (`After=a b`, several times): every word of every assignment. */
function list(unit: SystemdUnit, section: string, key: string): string[] {
  return (unit.sections[section]?.[key] ?? []).flatMap((v) =>
    splitWords(expandSpecifiers(v, unit.name), 'systemd'),
  );
}

/** systemd.time(7) time spans as these units write them: `90`, `2s`, `100ms`, `1min 30s`. */
export function parseTimespanMs(value: string): number {
  let ms = 0;
  for (const part of value.trim().split(/\s+/)) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|sec|m|min|h)?$/.exec(part);
    if (!m) throw new Error(`time span ${value}: not one this stand-in reads`);
    const factor = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[m[2] ?? 's'] as number;
    ms += Number(m[1]) * factor;
  }
  return ms;
}

/** The unit's `Environment=` then `EnvironmentFile=` variables (a later one overrides). */
export function unitEnvironment(unit: SystemdUnit): Record<string, string> {
  const env: Record<string, string> = {};
  // No `$` expansion here: systemd.exec(5), "the $ character has no special meaning".
  for (const word of list(unit, 'Service', 'Environment')) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new Error(`${unit.name}: Environment= word without NAME=: ${word}`);
    env[word.slice(0, eq)] = word.slice(eq + 1);
  }
  for (const entry of unit.sections.Service?.EnvironmentFile ?? []) {
    const optional = entry.startsWith('-');
    const file = expandSpecifiers(optional ? entry.slice(1) : entry, unit.name);
    if (!existsSync(file)) {
      if (optional) continue;
      throw new Error(`${unit.name}: EnvironmentFile=${file} does not exist (systemd fails the unit)`);
    }
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
      const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(trimmed);
      if (!m) throw new Error(`${unit.name}: ${file}: not a NAME=value line: ${line}`);
      const [word] = m[2] === '' ? [''] : splitWords(m[2] as string, 'systemd');
      env[m[1] as string] = word ?? '';
    }
  }
  return env;
}

/** systemd's fixed search path for a command that is not absolute (systemd.service(5)). */
const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** `ExecStart=` as the argv systemd executes: unquoted, then `$VAR`, `${VAR}` and `$$` expanded. */
export function execStartArgv(unit: SystemdUnit, env: Record<string, string>): string[] {
  const lines = unit.sections.Service?.ExecStart ?? [];
  if (lines.length !== 1)
    throw new Error(`${unit.name}: ${lines.length} ExecStart= lines, this stand-in runs one`);
  const raw = expandSpecifiers(lines[0] as string, unit.name);
  if (/^[-@:+!]/.test(raw)) throw new Error(`${unit.name}: ExecStart= prefixes are not run by this stand-in`);
  const argv = splitWords(raw, 'systemd').flatMap((word) => {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    // `$FOO` as a word of its own: the value split at whitespace (quotes respected), 0 or more words.
    if (whole) return splitWords(env[whole[1] as string] ?? '', 'systemd');
    return [
      word.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name?: string) =>
        name === undefined ? '$' : (env[name] ?? ''),
      ),
    ];
  });
  const program = argv[0] as string;
  if (!isAbsolute(program)) {
    const found = SEARCH_PATH.map((dir) => join(dir, program)).find((p) => existsSync(p));
    if (!found) throw new Error(`${unit.name}: ${program} not found in systemd's search path`);
    argv[0] = found;
  }
  return argv;
}

/** What a unit's main process's exit counts as, by systemd's rules (and `SuccessExitStatus=`). */
function clean(unit: SystemdUnit, exit: Exit): boolean {
  if (exit.code === 0) return true;
  if (exit.signal && ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGPIPE'].includes(exit.signal)) return true;
  const success = list(unit, 'Service', 'SuccessExitStatus');
  return (
    (exit.code !== null && success.includes(String(exit.code))) ||
    (!!exit.signal && success.includes(exit.signal))
  );
}

/**
 * The units in the order systemd starts them: every unit after the loaded units it is ordered
 * `After=` (or that are `Before=` it). Units outside `names` (network-online.target,
 * redis-server.service) order nothing, as systemd orders only the jobs it runs.
 */
export function startOrder(units: SystemdUnit[]): SystemdUnit[] {
  const byName = new Map(units.map((u) => [u.name, u]));
  const afterOf = new Map(units.map((u) => [u.name, new Set<string>()]));
  for (const u of units) {
    for (const other of list(u, 'Unit', 'After')) if (byName.has(other)) afterOf.get(u.name)?.add(other);
    for (const other of list(u, 'Unit', 'Before')) if (byName.has(other)) afterOf.get(other)?.add(u.name);
  }
  const order: SystemdUnit[] = [];
  const placed = new Set<string>();
  while (order.length < units.length) {
    const next = units.find(
      (u) => !placed.has(u.name) && [...(afterOf.get(u.name) ?? [])].every((o) => placed.has(o)),
    );
    if (!next)
      throw new Error(
        `ordering cycle among ${units
          .filter((u) => !placed.has(u.name))
          .map((u) => u.name)
          .join(', ')}`,
      );
    order.push(next);
    placed.add(next.name);
  }
  return order;
}

export interface RunningUnit extends SupervisedProcess {
  unit: string;
  /** Set when the unit failed its start limit: systemd leaves it failed. */
  failed?: boolean;
}

export interface UnitStop {
  unit: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** systemd's verdict: `success`, `exit-code`/`signal` (an unclean exit), `timeout` (SIGKILL needed). */
  result: 'success' | 'exit-code' | 'signal' | 'timeout';
}

export interface RunningSystemd {
  /** The started units' main processes, in start order. */
  readonly units: readonly RunningUnit[];
  /** The argv each unit was started with, by unit name. */
  readonly argv: ReadonlyMap<string, string[]>;
  /** `systemctl stop` of everything started: reverse ordering, KillSignal=, SIGKILL after TimeoutStopSec=. */
  stop(): Promise<UnitStop[]>;
}

export interface RunSystemdOptions {
  /** The folder each unit's output goes to, as `<unit>.log`. */
  logDir: string;
}

/** systemd's environment for the services it starts (a system manager's, no User=). */
const MANAGER_ENV = { PATH: SEARCH_PATH.join(':') };
const START_LIMIT_BURST = 5;
const START_LIMIT_INTERVAL_MS = 10_000;

/**
 * `systemctl start` of `start` (units of `dir`; a `.target` brings the units it `Wants=` and
 * those `WantedBy=` it), as systemd runs them.
 */
export function runSystemdUnits(dir: string, start: string[], options: RunSystemdOptions): RunningSystemd {
  const all = loadUnits(dir);
  const names = new Set<string>();
  for (const name of start) {
    const unit = all.get(name);
    if (!unit) throw new Error(`no unit ${name} in ${dir}`);
    if (name.endsWith('.target')) {
      const wanted = [...list(unit, 'Unit', 'Wants'), ...list(unit, 'Unit', 'Requires')];
      for (const u of all.values()) if (list(u, 'Install', 'WantedBy').includes(name)) wanted.push(u.name);
      for (const w of wanted) {
        if (!all.has(w)) throw new Error(`${name} wants ${w}, which is not in ${dir}`);
        names.add(w);
      }
    } else {
      names.add(name);
    }
  }
  const services = startOrder([...names].map((n) => all.get(n) as SystemdUnit));
  const argv = new Map<string, string[]>();
  const running: RunningUnit[] = [];

  for (const unit of services) {
    if (setting(unit, 'Service', 'User') !== undefined)
      throw new Error(`${unit.name}: User= is not run by this stand-in`);
    const type = setting(unit, 'Service', 'Type') ?? 'simple';
    if (!['simple', 'exec', 'notify'].includes(type))
      throw new Error(`${unit.name}: Type=${type} not run here`);
    const env = { ...MANAGER_ENV, ...unitEnvironment(unit) };
    const words = execStartArgv(unit, env);
    argv.set(unit.name, words);
    const cwd = setting(unit, 'Service', 'WorkingDirectory');
    if (cwd !== undefined && !isAbsolute(cwd))
      throw new Error(`${unit.name}: WorkingDirectory= must be absolute`);
    const log = join(options.logDir, `${unit.name}.log`);
    const spawnUnit = (): ChildProcess =>
      spawnLogged(words, { env, stdout: log, stderr: log, group: true, ...(cwd && { cwd }) });
    const restart = setting(unit, 'Service', 'Restart') ?? 'no';
    if (!['no', 'always', 'on-failure'].includes(restart))
      throw new Error(`${unit.name}: Restart=${restart} not run by this stand-in`);
    const restartMs = parseTimespanMs(setting(unit, 'Service', 'RestartSec') ?? '100ms');
    const startTimes: number[] = [];
    const again = (p: RunningUnit): number | undefined => {
      const exit = p.lastExit as Exit;
      if (restart === 'no' || (restart === 'on-failure' && clean(unit, exit))) return undefined;
      const recent = startTimes.filter((t) => t > Date.now() + restartMs - START_LIMIT_INTERVAL_MS);
      if (recent.length >= START_LIMIT_BURST) {
        p.failed = true;
        return undefined;
      }
      return restartMs;
    };
    const countedSpawn = () => {
      startTimes.push(Date.now());
      return spawnUnit();
    };
    running.push(supervise<RunningUnit>(countedSpawn, again, { unit: unit.name }));
  }

  return {
    units: running,
    argv,
    async stop() {
      for (const p of running) endRestarts(p);
      const results: UnitStop[] = [];
      const stopped = new Map<string, Promise<void>>();
      // A unit stops once every unit ordered after it has stopped (start order reversed).
      const stopUnit = async (unit: SystemdUnit, p: RunningUnit) => {
        const later = services.filter(
          (u) =>
            list(u, 'Unit', 'After').includes(unit.name) || list(unit, 'Unit', 'Before').includes(u.name),
        );
        await Promise.all(later.map((u) => stopped.get(u.name)));
        const signal = (setting(unit, 'Service', 'KillSignal') ?? 'SIGTERM') as NodeJS.Signals;
        const mode = setting(unit, 'Service', 'KillMode') ?? 'control-group';
        if (mode !== 'mixed' && mode !== 'control-group')
          throw new Error(`${unit.name}: KillMode=${mode} not run by this stand-in`);
        if (mode === 'control-group' && p.child.pid !== undefined && p.child.exitCode === null) {
          try {
            process.kill(-p.child.pid, signal);
          } catch {
            // the group is gone already
          }
        }
        const timeoutMs = parseTimespanMs(setting(unit, 'Service', 'TimeoutStopSec') ?? '90');
        const exit = await stopSupervised(p, signal, timeoutMs, true);
        const result = exit.killed
          ? 'timeout'
          : clean(unit, exit)
            ? 'success'
            : exit.signal
              ? 'signal'
              : 'exit-code';
        results.push({ unit: unit.name, code: exit.code, signal: exit.signal, result });
      };
      // Stops are started from the last unit back, so each finds the ones it waits for.
      for (const unit of [...services].reverse()) {
        const p = running.find((r) => r.unit === unit.name) as RunningUnit;
        stopped.set(unit.name, stopUnit(unit, p));
      }
      await Promise.all(stopped.values());
      return results;
    },
  };
}
