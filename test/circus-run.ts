import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type SupervisedProcess,
  endRestarts,
  spawnLogged,
  splitWords,
  stopSupervised,
  supervise,
} from './supervised-process.js';

// A stand-in for circusd, for the tests of the rendered circus.ini on machines without Circus
// (Debian bookworm has no `circus` package; PyPI may be out of reach). It reads the file the way
// circusd does and starts every watcher the way circusd does: `cmd` (and `args`) with
// `$(circus.wid)` replaced, split like Python's shlex, in `working_dir`, with the caller's
// environment (`copy_env`) plus the watcher's `[env:NAME]` section, highest `priority` first,
// output appended to the stream files (whose directory must exist, as circusd requires),
// respawned when it exits. Stopping sends each watcher's `stop_signal`, lowest priority first,
// and SIGKILL after `graceful_timeout`: the order operations.md tells operators to stop in
// (`circusctl stop stratum`, then `quit`); circusd's own quit stops every watcher at once. It is
// not Circus: what circusd itself adds (its control socket, flapping detection) is not exercised.

export interface CircusWatcherSection {
  name: string;
  options: Record<string, string>;
  env: Record<string, string>;
}

export interface CircusIni {
  circus: Record<string, string>;
  watchers: CircusWatcherSection[];
}

/** Parses an INI file as Python's configparser reads circus.ini: sections, `key = value`, `#`/`;` comments. */
export function parseCircusIni(text: string): CircusIni {
  const sections = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = header[1] as string;
      if (sections.has(name)) throw new Error(`circus.ini line ${i + 1}: section [${name}] twice`);
      current = {};
      sections.set(name, current);
      continue;
    }
    const pair = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (!pair || !current)
      throw new Error(`circus.ini line ${i + 1}: not a key = value in a section: ${raw}`);
    const key = pair[1] as string;
    if (key in current) throw new Error(`circus.ini line ${i + 1}: ${key} twice in its section`);
    current[key] = pair[2] as string;
  }
  const watchers = [...sections.entries()]
    .filter(([name]) => name.startsWith('watcher:'))
    .map(([name, options]) => {
      const watcher = name.slice('watcher:'.length);
      return { name: watcher, options, env: sections.get(`env:${watcher}`) ?? {} };
    });
  return { circus: sections.get('circus') ?? {}, watchers };
}

export interface RunningProcess extends SupervisedProcess {
  watcher: string;
  wid: number;
}

export interface RunningCircus {
  readonly processes: readonly RunningProcess[];
  /** The argv each copy was started with, by `watcher/wid`. */
  readonly argv: ReadonlyMap<string, string[]>;
  /** Lowest priority first, each watcher's stop_signal, SIGKILL after its graceful_timeout. */
  stop(): Promise<{ watcher: string; wid: number; code: number | null; signal: NodeJS.Signals | null }[]>;
}

/** Starts every watcher of `ini` as circusd would; `baseEnv` is circusd's own environment. */
export function runCircusIni(ini: CircusIni, baseEnv: NodeJS.ProcessEnv = process.env): RunningCircus {
  const watchers = [...ini.watchers].sort(
    (a, b) => Number(b.options.priority ?? 0) - Number(a.options.priority ?? 0),
  );
  const processes: RunningProcess[] = [];
  const argv = new Map<string, string[]>();

  const start = (w: CircusWatcherSection, wid: number) => () => {
    const sub = (text: string) =>
      text.replaceAll('$(circus.wid)', String(wid)).replaceAll('((circus.wid))', String(wid));
    const words = [...splitWords(sub(w.options.cmd as string)), ...splitWords(sub(w.options.args ?? ''))];
    argv.set(`${w.name}/${wid}`, words);
    const streams: { stdout?: string; stderr?: string } = {};
    for (const stream of ['stdout', 'stderr'] as const) {
      const file = w.options[`${stream}_stream.filename`];
      if (!file) continue;
      // As circusd: the directory must exist (circusd 0.19 refuses the watcher otherwise).
      if (!existsSync(dirname(file)))
        throw new Error(`circusd would refuse watcher ${w.name}: no directory ${dirname(file)} for ${file}`);
      streams[stream] = file;
    }
    return spawnLogged(words, {
      cwd: w.options.working_dir,
      env: { ...(w.options.copy_env === 'true' ? baseEnv : {}), ...w.env },
      ...streams,
    });
  };

  for (const w of watchers) {
    for (let wid = 1; wid <= Number(w.options.numprocesses ?? 1); wid++) {
      // circusd starts an exited copy again at once (as long as respawn is on).
      const again = (p: RunningProcess) => (w.options.respawn !== 'false' && p.starts < 20 ? 0 : undefined);
      processes.push(supervise<RunningProcess>(start(w, wid), again, { watcher: w.name, wid }));
    }
  }
  return {
    processes,
    argv,
    async stop() {
      for (const p of processes) endRestarts(p);
      const results: Awaited<ReturnType<RunningCircus['stop']>> = [];
      for (const w of [...watchers].reverse()) {
        const signal = (w.options.stop_signal ?? 'SIGTERM') as NodeJS.Signals;
        const deadlineMs = Number(w.options.graceful_timeout ?? 30) * 1000;
        const copies = processes.filter((p) => p.watcher === w.name);
        await Promise.all(
          copies.map(async (p) => {
            const { code, signal: exitSignal } = await stopSupervised(p, signal, deadlineMs);
            results.push({ watcher: p.watcher, wid: p.wid, code, signal: exitSignal });
          }),
        );
      }
      return results;
    },
  };
}
