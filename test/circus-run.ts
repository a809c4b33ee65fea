import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { dirname } from 'node:path';

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

/** Splits a command line as Python's `shlex.split` (POSIX mode) does. */
export function shlexSplit(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unclosed ' in ${line}`);
      word += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      for (i++; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\' || line[i + 1] === '$')) i++;
        word += line[i];
      }
      if (i >= line.length) throw new Error(`unclosed " in ${line}`);
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

export interface RunningProcess {
  watcher: string;
  wid: number;
  child: ChildProcess;
  /** Starts of this copy (1, then one more per respawn). */
  starts: number;
  /** Exit code or signal of the last exit, once it exited. */
  lastExit?: { code: number | null; signal: NodeJS.Signals | null };
}

export interface RunningCircus {
  readonly processes: readonly RunningProcess[];
  /** The argv each copy was started with, by `watcher/wid`. */
  readonly argv: ReadonlyMap<string, string[]>;
  /** Lowest priority first, each watcher's stop_signal, SIGKILL after its graceful_timeout. */
  stop(): Promise<{ watcher: string; wid: number; code: number | null; signal: NodeJS.Signals | null }[]>;
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Starts every watcher of `ini` as circusd would; `baseEnv` is circusd's own environment. */
export function runCircusIni(ini: CircusIni, baseEnv: NodeJS.ProcessEnv = process.env): RunningCircus {
  const watchers = [...ini.watchers].sort(
    (a, b) => Number(b.options.priority ?? 0) - Number(a.options.priority ?? 0),
  );
  const processes: RunningProcess[] = [];
  const argv = new Map<string, string[]>();
  let stopping = false;

  const start = (w: CircusWatcherSection, wid: number, proc?: RunningProcess): RunningProcess => {
    const sub = (text: string) =>
      text.replaceAll('$(circus.wid)', String(wid)).replaceAll('((circus.wid))', String(wid));
    const words = [...shlexSplit(sub(w.options.cmd as string)), ...shlexSplit(sub(w.options.args ?? ''))];
    argv.set(`${w.name}/${wid}`, words);
    const env = { ...(w.options.copy_env === 'true' ? baseEnv : {}), ...w.env };
    const child = spawn(words[0] as string, words.slice(1), {
      cwd: w.options.working_dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      const file = w.options[`${stream}_stream.filename`];
      if (!file) {
        child[stream]?.resume();
        continue;
      }
      // As circusd: the directory must exist (circusd 0.19 refuses the watcher otherwise).
      if (!existsSync(dirname(file)))
        throw new Error(`circusd would refuse watcher ${w.name}: no directory ${dirname(file)} for ${file}`);
      child[stream]?.pipe(createWriteStream(file, { flags: 'a' }));
    }
    const running = proc ?? { watcher: w.name, wid, child, starts: 0 };
    running.child = child;
    running.starts++;
    child.on('error', () => {}); // a missing program shows as an exit
    child.once('exit', (code, signal) => {
      running.lastExit = { code, signal };
      if (!stopping && w.options.respawn !== 'false' && running.starts < 20) start(w, wid, running);
    });
    return running;
  };

  for (const w of watchers) {
    for (let wid = 1; wid <= Number(w.options.numprocesses ?? 1); wid++) processes.push(start(w, wid));
  }
  return {
    processes,
    argv,
    async stop() {
      stopping = true;
      const results: Awaited<ReturnType<RunningCircus['stop']>> = [];
      for (const w of [...watchers].reverse()) {
        const copies = processes.filter((p) => p.watcher === w.name);
        const signal = (w.options.stop_signal ?? 'SIGTERM') as NodeJS.Signals;
        const deadlineMs = Number(w.options.graceful_timeout ?? 30) * 1000;
        await Promise.all(
          copies.map(async (p) => {
            const done = exited(p.child);
            if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
            let timer: NodeJS.Timeout | undefined;
            const timeout = new Promise<'timeout'>((resolve) => {
              timer = setTimeout(() => resolve('timeout'), deadlineMs);
            });
            const outcome = await Promise.race([done, timeout]);
            clearTimeout(timer);
            if (outcome === 'timeout') p.child.kill('SIGKILL');
            const exit = await done;
            results.push({ watcher: p.watcher, wid: p.wid, ...exit });
          }),
        );
      }
      return results;
    },
  };
}
