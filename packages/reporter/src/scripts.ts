import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '@hashwire/registry';

/** Lua scripts in `lua/`, each with its KEYS/ARGV header, and how many keys each takes (-1: given per call). */
const SCRIPTS = {
  'credit-batch': -1,
  'close-round': 5,
  'block-state': 4,
} as const;
export type ScriptName = keyof typeof SCRIPTS;

const lua = new Map<ScriptName, string>();
function source(name: ScriptName): string {
  let text = lua.get(name);
  if (text === undefined) {
    text = readFileSync(fileURLToPath(new URL(`../lua/${name}.lua`, import.meta.url)), 'utf8');
    lua.set(name, text);
  }
  return text;
}

const defined = new WeakSet<RedisClient>();
type Script = (...args: (string | number)[]) => Promise<unknown>;

/** Runs a script by name: one EVALSHA (ioredis falls back to EVAL when Redis lost its script cache). */
export function runScript(
  client: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  if (!defined.has(client)) {
    for (const [script, numberOfKeys] of Object.entries(SCRIPTS)) {
      client.defineCommand(commandName(script as ScriptName), {
        ...(numberOfKeys >= 0 ? { numberOfKeys } : {}),
        lua: source(script as ScriptName),
      });
    }
    defined.add(client);
  }
  const command = (client as unknown as Record<string, Script>)[commandName(name)];
  if (!command) throw new Error(`script ${name} is not defined`);
  // A script defined without numberOfKeys takes the key count as its first argument.
  return SCRIPTS[name] >= 0
    ? command.call(client, ...keys, ...args)
    : command.call(client, keys.length, ...keys, ...args);
}

function commandName(name: ScriptName): string {
  return `hw_reporter_${name.replace(/-/g, '_')}`;
}
