// The commands, subcommands, flags and config keys the README, docs/ and the package READMEs tell
// a user to type exist: each `hashwire <command> [sub] --flag` is in `hashwire help` (or handled
// by the ./hashwire script) and in that command's `--help`, and each config key (`stratum.drain.graceMs`,
// `HASHWIRE_REDIS__URL`) is in the pool config schema (`hashwire config reference`). No services.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, main, usage } from '@hashwire/cli';
import { poolConfigReference } from '@hashwire/core';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type CommandHelp,
  type CommandMention,
  type KeyMention,
  type SchemaKey,
  codeSpans,
  commandMentions,
  helpCommands,
  keyExists,
  keyMentions,
  parseCommandHelp,
  referenceKeys,
  rpcMethodNames,
  scriptCommands,
  tomlKeyMentions,
} from './docs-names.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string) => readFileSync(join(root, file), 'utf8');

/** What a user reads: the README, docs/*.md and each package's README. */
const DOC_FILES = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
  ...readdirSync(join(root, 'packages'))
    .map((p) => `packages/${p}/README.md`)
    .filter((f) => {
      try {
        read(f);
        return true;
      } catch {
        return false;
      }
    }),
];

/** Commands the ./hashwire script runs itself (no `--help` of the CLI: `test` hands its arguments to vitest). */
const scriptOnly = scriptCommands(read('hashwire'));
const cliCommands = helpCommands(usage());
const helps = new Map<string, CommandHelp>();
let schemaKeys: SchemaKey[];
let sections: Set<string>;
const rpcMethods = rpcMethodNames(read('packages/protocol/src/rpc.ts'));

/**
 * A command's `--help` as `hashwire <command> --help` prints it (stdout, console.log included);
 * null for a command the ./hashwire script runs itself (`test`), which the CLI does not know.
 */
async function helpOf(command: string): Promise<string | null> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    out += `${args.join(' ')}\n`;
  });
  try {
    expect(await main([command, '--help']), `hashwire ${command} --help exit code`).toBe(0);
  } catch (error) {
    if (error instanceof UsageError && scriptOnly.has(command)) return null;
    throw error;
  } finally {
    vi.restoreAllMocks();
  }
  return out;
}

beforeAll(async () => {
  for (const command of cliCommands) {
    const help = await helpOf(command);
    if (help !== null) helps.set(command, parseCommandHelp(command, help));
  }
  schemaKeys = referenceKeys(poolConfigReference());
  sections = new Set(schemaKeys.map((k) => k.path.split(/[.[]/)[0]!));
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** Why a mention names nothing the CLI has, or null when it does. */
function commandProblem(m: CommandMention): string | null {
  if (m.command === 'help') return null;
  if (!cliCommands.has(m.command) && !scriptOnly.has(m.command))
    return `no command "${m.command}" in hashwire help or ./hashwire`;
  const help = helps.get(m.command);
  if (!help) return null; // `test`, `bootstrap`: the script's own (`test` passes vitest's arguments)
  if (m.subcommand !== null && help.subcommands !== null) {
    const unknown = m.subcommand.split('|').filter((s) => !help.subcommands!.has(s));
    if (unknown.length > 0)
      return `hashwire ${m.command} has no ${unknown.join(', ')} (its --help: ${[...help.subcommands].join(', ')})`;
  }
  const flags = m.flags.filter((f) => !help.flags.has(f));
  if (flags.length > 0) return `hashwire ${m.command} --help names no ${flags.join(', ')}`;
  return null;
}

function keyProblem(m: KeyMention): string | null {
  return keyExists(m, schemaKeys) ? null : `no config key ${m.text} in the pool config schema`;
}

function problems(file: string, text: string): string[] {
  const spans = codeSpans(text);
  return [
    ...commandMentions(spans).flatMap((m) => {
      const p = commandProblem(m);
      return p ? [`${file}: \`${m.text}\`: ${p}`] : [];
    }),
    ...[...keyMentions(spans, sections, rpcMethods), ...tomlKeyMentions(text)].flatMap((m) => {
      const p = keyProblem(m);
      return p ? [`${file}: ${p}`] : [];
    }),
  ];
}

describe('the names the docs give exist', () => {
  it('reads the CLI, the ./hashwire script and the config schema', () => {
    for (const c of ['demo', 'up', 'status', 'drain', 'render', 'config', 'keys', 'run'])
      expect(cliCommands).toContain(c);
    for (const c of ['test', 'demo', 'bootstrap']) expect(scriptOnly).toContain(c);
    expect(helps.has('test')).toBe(false);
    expect(helps.get('drain')!.flags).toContain('--token-file');
    expect(helps.get('render')!.subcommands).toContain('circus');
    expect(helps.get('bench')!.subcommands).toContain('shares');
    expect(sections).toContain('stratum');
    expect(schemaKeys.map((k) => k.path)).toContain('stratum.drain.graceMs');
    expect(rpcMethods).toContain('reporter.shares');
  });

  it('a made-up command, subcommand, flag or key is caught', () => {
    const made = [
      '`hashwire frobnicate`',
      '`./hashwire render nginx --config F`',
      '`hashwire drain <id> --all-of-them`',
      '`stratum.drain.timeoutMs`',
      '`HASHWIRE_STRATUM__CUONT=3`',
      '```sh\nhashwire status --yaml   # a comment\n```',
      '```toml\n[stratum.drain]\ngraceMs = 1\n[rpc.curve]\nstratum = { publicKey = "…", secretFile = "k" }\n```',
    ].join('\n');
    expect(problems('made-up.md', made)).toEqual([
      'made-up.md: `hashwire frobnicate`: no command "frobnicate" in hashwire help or ./hashwire',
      `made-up.md: \`hashwire render nginx --config F\`: hashwire render has no nginx (its --help: ${[...helps.get('render')!.subcommands!].join(', ')})`,
      'made-up.md: `hashwire drain <id> --all-of-them`: hashwire drain --help names no --all-of-them',
      'made-up.md: `hashwire status --yaml`: hashwire status --help names no --yaml',
      'made-up.md: no config key stratum.drain.timeoutMs in the pool config schema',
      'made-up.md: no config key HASHWIRE_STRATUM__CUONT in the pool config schema',
      'made-up.md: no config key rpc.curve.stratum.secretFile in the pool config schema',
    ]);
    // And what exists passes, in every form the docs use.
    const real = [
      '`hashwire drain <service-id> [--config F | --redis URL --prefix P]`',
      '`hashwire render haproxy\\|circus`',
      '`hashwire bench shares --json out.json`',
      '`./hashwire test packages/chain`',
      '`--set stratum.count=3`, `[rpc.curve]`, `chains[].daemons[].url`, `statsd.tags.env`',
      '`HASHWIRE_STRATUM__VARDIFF__TARGET_SHARES_PER_MIN=20`, `HASHWIRE_CHAINS__0__PAYOUTS__0__ADDRESS`',
      '`reporter.shares`, `haproxy.cfg`, `stratum.key`, `$(circus.wid)`, `stratum.handshake_server_cpu_us`',
      '```toml\n[[chains]]\ncoin = "litecoin"\n[rpc.curve]\nstratum = { publicKey = "…", secretKeyFile = "k" }\n```',
    ].join('\n');
    expect(problems('real.md', real)).toEqual([]);
  });

  it.each(DOC_FILES)('%s', (file) => {
    expect(problems(file, read(file))).toEqual([]);
  });

  it('the docs name many commands and keys, so the check reads them', () => {
    const spans = DOC_FILES.flatMap((f) => codeSpans(read(f)));
    expect(commandMentions(spans).length).toBeGreaterThan(50);
    expect(keyMentions(spans, sections, rpcMethods).length).toBeGreaterThan(100);
    expect(tomlKeyMentions(read('docs/operations.md')).map((m) => m.text)).toContain(
      'rpc.curve.stratum.secretKeyFile',
    );
  });
});
