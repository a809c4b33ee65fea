import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from './redis.js';

type Script = (...args: (string | number)[]) => Promise<unknown>;

type Pipeline = ReturnType<RedisClient['pipeline']>;

/** Runs one script of a set by name, with its keys and arguments. */
export interface LuaScriptRunner<Name extends string> {
  (
    client: RedisClient,
    name: Name,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown>;
  /**
   * A pipeline of `client` whose first keyed command is the script: commands added after it leave in
   * the same write to the same node (on a Cluster, the node of the script's keys), so a key-less
   * command such as WAIT applies to that node and that connection.
   */
  pipeline(
    client: RedisClient,
    name: Name,
    keys: readonly string[],
    args: readonly (string | number)[],
    /** Commands queued before the script (key-less ones, so the script's keys still route it). */
    before?: (pipeline: Pipeline) => void,
  ): Pipeline;
}

/**
 * A set of Lua scripts, one file per script in `dir` (`<name>.lua`, with its KEYS/ARGV
 * header), each with its key count (-1: the count is given per call). Sources are read once;
 * each client gets them as commands on first use, run with EVALSHA (ioredis falls back to EVAL
 * when Redis lost its script cache, e.g. after a restart). `namespace` keeps the command names
 * of different packages apart.
 */
export function defineLuaScripts<Name extends string>(
  dir: URL,
  scripts: Readonly<Record<Name, number>>,
  namespace: string,
): LuaScriptRunner<Name> {
  const sources = new Map<Name, string>();
  const source = (name: Name): string => {
    let text = sources.get(name);
    if (text === undefined) {
      text = readFileSync(fileURLToPath(new URL(`${name}.lua`, dir)), 'utf8');
      sources.set(name, text);
    }
    return text;
  };
  const commandName = (name: Name) => `${namespace}_${name.replace(/-/g, '_')}`;
  const defined = new WeakSet<RedisClient>();
  const define = (client: RedisClient) => {
    if (!defined.has(client)) {
      for (const script of Object.keys(scripts) as Name[]) {
        const numberOfKeys = scripts[script];
        client.defineCommand(commandName(script), {
          ...(numberOfKeys >= 0 ? { numberOfKeys } : {}),
          lua: source(script),
        });
      }
      defined.add(client);
    }
  };
  const call = <T>(target: T, name: Name, keys: readonly string[], args: readonly (string | number)[]) => {
    const command = (target as unknown as Record<string, Script>)[commandName(name)];
    if (!command) throw new Error(`script ${name} is not defined`);
    // A script defined without numberOfKeys takes the key count as its first argument.
    return scripts[name] >= 0
      ? command.call(target, ...keys, ...args)
      : command.call(target, keys.length, ...keys, ...args);
  };
  const run = ((client, name, keys, args) => {
    define(client);
    return call(client, name, keys, args);
  }) as LuaScriptRunner<Name>;
  run.pipeline = (client, name, keys, args, before) => {
    // Defined on the client first: a pipeline takes the client's script commands when made.
    define(client);
    const pipeline = client.pipeline();
    before?.(pipeline);
    void call(pipeline, name, keys, args);
    return pipeline;
  };
  return run;
}

/** The registry's own scripts (`lua/`). */
export const runScript = defineLuaScripts(
  new URL('../lua/', import.meta.url),
  {
    register: 2,
    deregister: 2,
    'lease-acquire': 2,
    'lease-renew': 1,
    'lease-release': 1,
    'lease-handover': 2,
    group: 5,
    'extranonce-slot-renew': 1,
    'extranonce-slot-release': 1,
    'service-event': 2,
  },
  'hw',
);
