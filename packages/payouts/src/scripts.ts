import { defineLuaScripts } from '@hashwire/registry';

/** The payouts Lua scripts in `lua/` and their key counts. */
export const runScript = defineLuaScripts(
  new URL('../lua/', import.meta.url),
  { 'share-out': 8, 'pay-intent': 5, 'pay-record': 7, 'pay-fail': 4 },
  'hw_payouts',
);
