import { defineLuaScripts } from '@hashwire/registry';

/** The reporter's Lua scripts in `lua/` and their key counts (-1: given per call). */
export const runScript = defineLuaScripts(
  new URL('../lua/', import.meta.url),
  { 'credit-batch': -1, 'close-round': 6, 'block-state': 5, 'online-sweep': 2 },
  'hw_reporter',
);
