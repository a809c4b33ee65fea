// Readers for the names the documentation gives a user to type — `hashwire <command>` lines with
// their subcommands and flags, pool config keys (`stratum.drain.graceMs`, `HASHWIRE_REDIS__URL`)
// — and for what the CLI and the pool config schema really have, so test/docs-names.test.ts can
// compare them.

/** One `hashwire …` command line as a document writes it. */
export interface CommandMention {
  /** e.g. `drain`; a placeholder such as `<command>` is never returned. */
  command: string;
  /** The first word after the command when it is a plain word or `a|b` (a subcommand), else null. */
  subcommand: string | null;
  /** Every `--flag` named on the line, without value. */
  flags: string[];
  /** The text as written, for messages. */
  text: string;
}

/** A dotted or environment-variable config key a document names. */
export interface KeyMention {
  /** As written: `stratum.drain.graceMs` or `HASHWIRE_STRATUM__COUNT`. */
  text: string;
  /** Path segments; list indexes (`0`, `[]`) are left out. */
  segments: string[];
  /** `env` keys match the schema's keys without regard to case or `_`, as the loader does. */
  style: 'dotted' | 'env';
}

/**
 * The pieces of a Markdown text a reader would type: backticked spans, and the lines of fenced
 * code blocks with their `# comment` cut off. Blocks marked ```` ```text ```` are a program's
 * output (an error message may quote a wrong key on purpose) and are left out. Table cells'
 * `\|` is read as `|`.
 */
export function codeSpans(markdown: string): string[] {
  const out: string[] = [];
  let fence: string | null = null;
  for (const raw of markdown.split('\n')) {
    const line = raw.replaceAll('\\|', '|');
    const marker = /^\s*```\s*(\S*)/.exec(line);
    if (marker) {
      fence = fence === null ? marker[1]! : null;
      continue;
    }
    if (fence === 'text') continue;
    if (fence !== null) out.push(line.replace(/(^|\s)#(\s.*)?$/, ''));
    else for (const m of line.matchAll(/`([^`]+)`/g)) out.push(m[1]!);
  }
  return out;
}

const WORD = /^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*$/;

/** Every `hashwire <command> …` (also `./hashwire …`) in the spans; not `@hashwire/x` or `hashwire_x`. */
export function commandMentions(spans: readonly string[]): CommandMention[] {
  const out: CommandMention[] = [];
  for (const span of spans) {
    for (const m of span.matchAll(/(?:^|[\s"'(]|\.\/)hashwire +([^;&`"')]*)/g)) {
      // One command per mention: stop at a shell operator or a second command.
      const words = m[1]!.split(/\s+/).filter(Boolean);
      const command = words[0];
      if (!command || !WORD.test(command) || command.includes('|')) continue;
      const rest = words.slice(1);
      // `[a|b ...]` offers subcommands; a lone `[word ...]` is a placeholder (`[suite ...]`).
      const written = rest[0] ?? '';
      const first = written.replace(/^\[|\]$/g, '');
      const placeholder = written.startsWith('[') && !first.includes('|');
      const subcommand = !placeholder && WORD.test(first) ? first : null;
      const flags = rest
        .map((w) => /^\[?(--[a-z][a-z0-9-]*)/.exec(w)?.[1])
        .filter((f): f is string => f !== undefined);
      out.push({ command, subcommand, flags, text: `hashwire ${words.join(' ')}` });
    }
  }
  return out;
}

/** The command names `hashwire help` lists (lines `  name  summary`). */
export function helpCommands(usage: string): Set<string> {
  return new Set([...usage.matchAll(/^ {2}([a-z][a-z0-9-]*) {2}/gm)].map((m) => m[1]!));
}

/** The labels of the `./hashwire` script's `case "$cmd"` (commands it handles before the CLI). */
export function scriptCommands(script: string): Set<string> {
  const block = /case "\$cmd" in\n([\s\S]*?)\nesac/.exec(script)?.[1] ?? '';
  return new Set([...block.matchAll(/^ {2}([a-z][a-z|-]*)\)/gm)].flatMap((m) => m[1]!.split('|')));
}

/** What one command's `--help` says it takes: flags, and subcommands when it has a fixed set. */
export interface CommandHelp {
  flags: Set<string>;
  /** From `usage: hashwire cmd a|b|c` or `[a|b ...]`, or a `suites: a, b` line; null when open. */
  subcommands: Set<string> | null;
}

export function parseCommandHelp(command: string, help: string): CommandHelp {
  const flags = new Set([...help.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
  let subcommands: Set<string> | null = null;
  const line = new RegExp(`usage: hashwire ${command} \\[?([a-z][a-z0-9-]*(?:\\|[a-z][a-z0-9-]*)+)`).exec(
    help,
  );
  if (line) subcommands = new Set(line[1]!.split('|'));
  const suites = /^suites: (.+)$/m.exec(help);
  if (suites) subcommands = new Set(suites[1]!.split(/,\s*/));
  return { flags, subcommands };
}

/** One key of the pool config reference (`hashwire config reference`): its path and type. */
export interface SchemaKey {
  /** With `[]` for list entries, as the reference writes it: `chains[].daemons[].url`. */
  path: string;
  type: string;
}

export function referenceKeys(reference: string): SchemaKey[] {
  const out: SchemaKey[] = [];
  for (const m of reference.matchAll(/^\| `([^`]+)`(?: \*\*required\*\*)? \| ([^|]*) \|/gm)) {
    out.push({ path: m[1]!, type: m[2]!.trim() });
  }
  return out;
}

/** Extensions of file names like `haproxy.cfg` or `stratum.key` that share a first word with a config section. */
const FILE_EXTENSIONS = new Set([
  'cfg',
  'ini',
  'ts',
  'js',
  'mjs',
  'md',
  'json',
  'toml',
  'yaml',
  'yml',
  'lua',
  'hbs',
  'sock',
  'log',
  'conf',
  'service',
  'jsonl',
  'key',
  'token',
  'pem',
  'crt',
]);

/**
 * The config keys named in the spans: dotted paths whose first word is a section of the config
 * (`stratum.drain.graceMs`, `chains[].coin`, `--set stratum.count=3`, `[rpc.curve]`), and
 * `HASHWIRE_A__B` variables. Left out: file names (`haproxy.cfg`), Circus variables
 * (`$(circus.wid)`), parts of longer names (`stratum.handshake_server_cpu_us`, `a/stratum.x`) and
 * the names in `notKeys` (RPC methods such as `reporter.shares`).
 */
export function keyMentions(
  spans: readonly string[],
  sections: ReadonlySet<string>,
  notKeys: ReadonlySet<string>,
): KeyMention[] {
  const out: KeyMention[] = [];
  for (const span of spans) {
    const dotted =
      /(?<![\w./$(-])([a-z][A-Za-z0-9]*(?:\[\d*\])?(?:\.[A-Za-z][A-Za-z0-9]*(?:\[\d*\])?)+)(?![\w-]|\.\w|\()/g;
    for (const m of span.matchAll(dotted)) {
      const text = m[1]!;
      const segments = text.replace(/\[\d*\]/g, '').split('.');
      if (!sections.has(segments[0]!) || notKeys.has(text)) continue;
      if (FILE_EXTENSIONS.has(segments.at(-1)!)) continue;
      out.push({ text, segments, style: 'dotted' });
    }
    for (const m of span.matchAll(/\bHASHWIRE_([A-Z0-9_]+)/g)) {
      const name = m[1]!;
      if (!name.includes('__')) continue; // HASHWIRE_CONFIG, HASHWIRE_STRATUM_CONFIG: not keys
      const segments = name.split('__').filter((s) => s !== '' && !/^\d+$/.test(s));
      if (name.endsWith('__') || segments.length < 2) continue; // `HASHWIRE_CHAINS__…`: a pattern
      out.push({ text: `HASHWIRE_${name}`, segments, style: 'env' });
    }
  }
  return out;
}

const blind = (segment: string) => segment.toLowerCase().replaceAll('_', '');

/**
 * Whether a mention names a key of the schema: a key of the reference, a section or table that
 * holds some (`http`, `redis.cluster`), or a key inside a `table of …` (free keys, e.g.
 * `statsd.tags.env`).
 */
export function keyExists(mention: KeyMention, keys: readonly SchemaKey[]): boolean {
  const same = (a: string, b: string) => (mention.style === 'env' ? blind(a) === blind(b) : a === b);
  const named = mention.segments;
  return keys.some((key) => {
    const path = key.path.replaceAll('[]', '').split('.');
    if (path.length >= named.length) return named.every((n, i) => same(path[i]!, n));
    return path.every((p, i) => same(p, named[i]!)) && key.type.startsWith('table of');
  });
}

/** The method names of the RPC contract (`'jm.subscribe': {` in the `RpcMethods` interface). */
export function rpcMethodNames(rpcSource: string): Set<string> {
  const body = /export interface RpcMethods \{([\s\S]*?)\n\}/.exec(rpcSource)?.[1] ?? '';
  return new Set([...body.matchAll(/^ {2}'([a-z]+\.[A-Za-z]+)':/gm)].map((m) => m[1]!));
}

/**
 * The keys a ```` ```toml ```` block of a document sets: `[a.b]` / `[[chains]]` headers, `key =`
 * lines and the keys of inline tables (`x = { publicKey = "…" }` → `a.b.x.publicKey`).
 */
export function tomlKeyMentions(markdown: string): KeyMention[] {
  const out: KeyMention[] = [];
  let inToml = false;
  let fenced = false;
  let prefix: string[] = [];
  for (const line of markdown.split('\n')) {
    const marker = /^\s*```\s*(\S*)/.exec(line);
    if (marker) {
      fenced = !fenced;
      inToml = fenced && marker[1] === 'toml';
      prefix = [];
      continue;
    }
    if (!inToml) continue;
    const header = /^\s*\[\[?([A-Za-z0-9_.]+)\]\]?\s*(#.*)?$/.exec(line);
    if (header) {
      prefix = header[1]!.split('.');
      out.push({ text: header[1]!, segments: prefix, style: 'dotted' });
      continue;
    }
    const entry = /^\s*([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    if (!entry) continue;
    const path = [...prefix, entry[1]!];
    out.push({ text: path.join('.'), segments: path, style: 'dotted' });
    const inline = /^\{(.*)\}/.exec(entry[2]!.trim());
    for (const m of (inline?.[1] ?? '').matchAll(/(?:^|,)\s*([A-Za-z0-9_]+)\s*=/g)) {
      out.push({ text: [...path, m[1]!].join('.'), segments: [...path, m[1]!], style: 'dotted' });
    }
  }
  return out;
}
