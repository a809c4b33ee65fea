import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateAdminToken, writeSecretFile } from '@hashwire/core';
import { curveKeyPair } from '@hashwire/rpc';
import { RPC_KINDS, type RpcKind } from './pool.js';

export const keysUsage = `usage: hashwire keys [jobmanager|stratum|reporter|admin ...] [--dir DIR] [--force]

Makes the pool's secrets, each in a file of mode 0600 in DIR (default var/keys, created 0700):
one CURVE key pair per service kind (<kind>.key holds the secret key; every instance of the kind
uses it) and the admin token POST /drain needs (admin.token). Prints the pool config sections that
use them: [rpc.curve] with the public keys, and http.adminTokenFile. Without names, makes all four.

Copy each <kind>.key only to the hosts that run that kind, admin.token to every host that runs
services or "hashwire drain". Existing files are left alone unless --force (rotation: see
docs/operations.md, "Security").

  --dir DIR   where the files go (default var/keys; relative paths in the printed config are
              taken from the config file's folder, so run this there)
  --force     replace files that exist`;

export const KEY_NAMES = [...RPC_KINDS, 'admin'] as const;
export type KeyName = (typeof KEY_NAMES)[number];

/** A bad `hashwire keys` command line (one line, exit code 2). */
export class KeysUsageError extends Error {
  override readonly name = 'KeysUsageError';
}

export interface PoolKeys {
  /** Per kind made: its public key and the file of its secret key. */
  curve: Partial<Record<RpcKind, { publicKey: string; secretKeyFile: string }>>;
  /** The admin token file, when made. */
  adminTokenFile?: string;
}

/**
 * Writes new secrets for `names` into `dir` (0600 files): `<kind>.key` with a CURVE secret key,
 * `admin.token`. Throws naming the files that exist unless `force`.
 */
export function generatePoolKeys(
  dir: string,
  options: { names?: readonly KeyName[]; force?: boolean } = {},
): PoolKeys {
  const names = options.names && options.names.length > 0 ? options.names : KEY_NAMES;
  const fileOf = (name: KeyName) => join(dir, name === 'admin' ? 'admin.token' : `${name}.key`);
  if (!options.force) {
    const existing = names.map(fileOf).filter((file) => existsSync(file));
    if (existing.length > 0)
      throw new Error(
        `${existing.join(', ')} already exist; --force replaces them (then restart, see rotation)`,
      );
  }
  const keys: PoolKeys = { curve: {} };
  for (const name of names) {
    const file = fileOf(name);
    if (name === 'admin') {
      writeSecretFile(file, generateAdminToken(), { overwrite: true });
      keys.adminTokenFile = file;
    } else {
      const pair = curveKeyPair();
      writeSecretFile(file, pair.secretKey, { overwrite: true });
      keys.curve[name] = { publicKey: pair.publicKey, secretKeyFile: file };
    }
  }
  return keys;
}

const tomlString = (text: string) => JSON.stringify(text);

/** The pool config sections (TOML) that use the keys made. */
export function keysConfigSnippet(keys: PoolKeys): string {
  const lines: string[] = [];
  const kinds = RPC_KINDS.filter((kind) => keys.curve[kind]);
  if (kinds.length > 0) {
    lines.push('[rpc.curve]');
    for (const kind of kinds) {
      const k = keys.curve[kind] as { publicKey: string; secretKeyFile: string };
      lines.push(
        `${kind} = { publicKey = ${tomlString(k.publicKey)}, secretKeyFile = ${tomlString(k.secretKeyFile)} }`,
      );
    }
  }
  if (keys.adminTokenFile) {
    if (lines.length > 0) lines.push('');
    lines.push('[http]', `adminTokenFile = ${tomlString(keys.adminTokenFile)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `hashwire keys`. */
export async function keysCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { dir: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(`${keysUsage}\n`);
    return 0;
  }
  const unknown = positionals.filter((p) => !KEY_NAMES.includes(p as KeyName));
  if (unknown.length > 0)
    throw new KeysUsageError(`unknown key name "${unknown.join(' ')}"; names: ${KEY_NAMES.join(', ')}`);
  const dir = values.dir ?? join('var', 'keys');
  let keys: PoolKeys;
  try {
    keys = generatePoolKeys(dir, { names: positionals as KeyName[], force: values.force === true });
  } catch (error) {
    process.stderr.write(`hashwire keys: ${(error as Error).message}\n`);
    return 1;
  }
  const made = [
    ...RPC_KINDS.flatMap((k) => (keys.curve[k] ? [keys.curve[k].secretKeyFile] : [])),
    ...(keys.adminTokenFile ? [keys.adminTokenFile] : []),
  ];
  process.stdout.write(
    `# hashwire keys: wrote ${made.join(', ')} (mode 0600)\n# put these sections in the pool config:\n\n${keysConfigSnippet(keys)}`,
  );
  return 0;
}
