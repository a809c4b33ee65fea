import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureAdminTokenFile, readSecretFile, readServiceSecrets, writeSecretFile } from '@hashwire/core';
import { describe, expect, it } from 'vitest';

const dir = () => mkdtempSync(join(tmpdir(), 'hw-secrets-'));

describe('secret files', () => {
  it('are written 0600 in a 0700 folder, never overwritten unless asked', () => {
    const file = join(dir(), 'keys', 'admin.token');
    expect(writeSecretFile(file, 'one')).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    expect(writeSecretFile(file, 'two')).toBe(false);
    expect(readSecretFile('f', file)).toBe('one');
    expect(writeSecretFile(file, 'three', { overwrite: true })).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('three\n');
  });

  it('ensureAdminTokenFile makes a token once and reads it back after', () => {
    const file = join(dir(), 'admin.token');
    const token = ensureAdminTokenFile(file);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ensureAdminTokenFile(file)).toBe(token);
  });

  it('refuses a secret others can read, a missing one and an empty one, naming the field', () => {
    const d = dir();
    const open = join(d, 'open.key');
    writeFileSync(open, 'secret\n', { mode: 0o644 });
    chmodSync(open, 0o644);
    expect(() => readSecretFile('curve.secretKeyFile', open)).toThrow(
      /curve.secretKeyFile: .* is open to group or others \(mode 644\).*chmod 600/,
    );
    expect(() => readSecretFile('adminTokenFile', join(d, 'missing'))).toThrow(
      /adminTokenFile: cannot read .*missing: ENOENT/,
    );
    const empty = join(d, 'empty');
    writeFileSync(empty, '\n', { mode: 0o600 });
    expect(() => readSecretFile('adminTokenFile', empty)).toThrow(/is empty/);
  });

  it("reads a bin config's curve.secretKeyFile and adminTokenFile", () => {
    const d = dir();
    writeSecretFile(join(d, 'reporter.key'), 'S'.repeat(40));
    writeSecretFile(join(d, 'admin.token'), 'T'.repeat(43));
    expect(
      readServiceSecrets({
        curve: { publicKey: 'P', secretKeyFile: join(d, 'reporter.key'), allowedClientKeys: ['A'] },
        adminTokenFile: join(d, 'admin.token'),
      }),
    ).toEqual({
      curve: { publicKey: 'P', secretKey: 'S'.repeat(40), allowedClientKeys: ['A'] },
      adminToken: 'T'.repeat(43),
    });
    expect(readServiceSecrets({})).toEqual({});
    expect(() => readServiceSecrets({ curve: { publicKey: 'P' } })).toThrow(/curve.secretKeyFile must name/);
  });
});
