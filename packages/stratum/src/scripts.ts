import { defineLuaScripts } from '@hashwire/registry';

/** The stratum server's Lua scripts in `lua/` and their key counts. */
export const runScript = defineLuaScripts(
  new URL('../lua/', import.meta.url),
  { 'extranonce-claim': 1, 'extranonce-detach': 1, 'extranonce-release': 1 },
  'hw_stratum',
);
