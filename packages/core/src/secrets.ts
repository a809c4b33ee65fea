import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { StartupError } from './config.js';

/*
 * Secrets (CURVE secret keys, the admin token) live in files of their own, readable by their
 * owner only, so they never sit in the main config, an environment variable or `config show`.
 */

/**
 * The trimmed content of the secret file `path`, given as `field`. Refused (StartupError naming
 * the field) when it cannot be read, is empty, or is readable or writable by group or others.
 */
export function readSecretFile(field: string, path: string): string {
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new StartupError(`${field}: cannot read ${path}: ${code} (hashwire keys writes it)`);
  }
  if ((mode & 0o077) !== 0) {
    throw new StartupError(
      `${field}: ${path} is open to group or others (mode ${(mode & 0o777).toString(8)}); a secret must be the owner's only: chmod 600 ${path}`,
    );
  }
  const secret = text.trim();
  if (secret === '') throw new StartupError(`${field}: ${path} is empty`);
  return secret;
}

/** A new admin token: 32 random bytes, base64url (43 characters). */
export function generateAdminToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Writes `content` to `path` with mode 0600 (its folder created 0700 if missing). Without
 * `overwrite`, an existing file is left alone and false is returned. Created through a link of a
 * finished temporary file, so a concurrent reader never sees it half written and two processes
 * creating it at once agree on one content.
 */
export function writeSecretFile(
  path: string,
  content: string,
  options: { overwrite?: boolean } = {},
): boolean {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temp, `${content}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(temp, 0o600); // whatever the umask
  try {
    if (options.overwrite) {
      try {
        unlinkSync(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    linkSync(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' && !options.overwrite) return false;
    throw error;
  } finally {
    unlinkSync(temp);
  }
}

/** Creates the admin token file at `path` with a new token unless it exists; returns the token in it. */
export function ensureAdminTokenFile(path: string, field = 'http.adminTokenFile'): string {
  writeSecretFile(path, generateAdminToken());
  return readSecretFile(field, path);
}

/** The secrets a service's JSON config names, read from their files. */
export interface ServiceSecrets {
  /** `curve` with `secretKeyFile` replaced by the `secretKey` read from it. */
  curve?: { publicKey: unknown; secretKey: string; allowedClientKeys?: unknown };
  adminToken?: string;
}

/**
 * Reads what a bin's JSON config points at: `curve.secretKeyFile` (or an inline
 * `curve.secretKey`) and `adminTokenFile` (or an inline `adminToken`). Keys are checked by the
 * service itself; here only the files. Every problem is a StartupError naming the field.
 */
export function readServiceSecrets(config: Record<string, unknown>): ServiceSecrets {
  const secrets: ServiceSecrets = {};
  const curve = config.curve;
  if (curve !== undefined) {
    if (typeof curve !== 'object' || curve === null || Array.isArray(curve))
      throw new StartupError(
        'curve must be an object { publicKey, secretKeyFile, allowedClientKeys } (hashwire keys makes the keys)',
      );
    const { secretKeyFile, secretKey, ...rest } = curve as Record<string, unknown>;
    let secret: string;
    if (typeof secretKeyFile === 'string' && secretKeyFile !== '')
      secret = readSecretFile('curve.secretKeyFile', secretKeyFile);
    else if (typeof secretKey === 'string' && secretKey !== '') secret = secretKey;
    else
      throw new StartupError(
        "curve.secretKeyFile must name the file holding this service's CURVE secret key (hashwire keys writes it)",
      );
    secrets.curve = { publicKey: rest.publicKey, secretKey: secret, ...rest };
  }
  const { adminTokenFile, adminToken } = config;
  if (adminTokenFile !== undefined) {
    if (typeof adminTokenFile !== 'string' || adminTokenFile === '')
      throw new StartupError('adminTokenFile must be a file path');
    secrets.adminToken = readSecretFile('adminTokenFile', adminTokenFile);
  } else if (adminToken !== undefined) {
    if (typeof adminToken !== 'string' || adminToken.length < 16)
      throw new StartupError('adminToken must be a string of at least 16 characters');
    secrets.adminToken = adminToken;
  }
  return secrets;
}
