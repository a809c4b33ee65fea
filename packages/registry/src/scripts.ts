import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from './redis.js';

/** Lua scripts in `lua/`, each with its KEYS/ARGV header; loaded once per client. */
const SCRIPTS = {
  register: 2,
  deregister: 2,
  'lease-acquire': 2,
  'lease-renew': 1,
  'lease-release': 1,
  'lease-handover': 2,
  group: 5,
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

/** Runs a script by name (EVALSHA with a fallback to EVAL, handled by ioredis). */
export function runScript(client: RedisClient, name: ScriptName, keys: string[], args: (string | number)[]) {
  if (!defined.has(client)) {
    for (const [script, numberOfKeys] of Object.entries(SCRIPTS)) {
      client.defineCommand(commandName(script as ScriptName), {
        numberOfKeys,
        lua: source(script as ScriptName),
      });
    }
    defined.add(client);
  }
  const command = (client as unknown as Record<string, Script>)[commandName(name)];
  if (!command) throw new Error(`script ${name} is not defined`);
  return command.call(client, ...keys, ...args);
}

function commandName(name: ScriptName): string {
  return `hw_${name.replace(/-/g, '_')}`;
}
