import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '@hashwire/cli';
import { loadPoolConfig } from '@hashwire/core';
import { curvePublicKey } from '@hashwire/rpc';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { serviceConfigs } from '../src/pool.js';
import { type CapturedOutput, captureOutput } from './capture-output.js';

const dir = mkdtempSync(join(tmpdir(), 'hw-keys-'));
let output: CapturedOutput;
beforeEach(() => {
  output = captureOutput();
});
afterEach(() => vi.restoreAllMocks());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CHAIN = `
[[chains]]
daemons = [{ url = "http://rpc:pw@127.0.0.1:19443/" }]
payouts = [{ address = "rltc1qqurswpc8qurswpc8qurswpc8qurswpc8ntpxlg" }]

[rpc]
host = "10.0.0.3"
`;

describe('hashwire keys', () => {
  it('writes a key pair per kind and the admin token, 0600, and prints the config that uses them', async () => {
    const keyDir = join(dir, 'keys');
    expect(await main(['keys', '--dir', keyDir])).toBe(0);
    for (const name of ['jobmanager.key', 'stratum.key', 'reporter.key', 'admin.token'])
      expect(statSync(join(keyDir, name)).mode & 0o777, name).toBe(0o600);
    expect(statSync(keyDir).mode & 0o777).toBe(0o700);
    expect(output.out).toMatch(/^# hashwire keys: wrote .*jobmanager\.key.*admin\.token \(mode 0600\)$/m);

    // The printed sections make an off-loopback pool config valid, and each public key is its
    // secret key's.
    const file = join(dir, 'pool.toml');
    writeFileSync(file, `${CHAIN}\n${output.out}`);
    const pool = loadPoolConfig({ file, env: {} });
    for (const kind of ['jobmanager', 'stratum', 'reporter'] as const) {
      const keys = pool.rpc.curve?.[kind];
      expect(keys?.secretKeyFile).toBe(join(keyDir, `${kind}.key`));
      expect(curvePublicKey(readFileSync(keys?.secretKeyFile as string, 'utf8').trim())).toBe(
        keys?.publicKey,
      );
    }
    expect(pool.http.adminTokenFile).toBe(join(keyDir, 'admin.token'));
    expect(serviceConfigs(pool).find((s) => s.kind === 'reporter')?.config.curve).toMatchObject({
      allowedClientKeys: [
        pool.rpc.curve?.jobmanager.publicKey,
        pool.rpc.curve?.stratum.publicKey,
        pool.rpc.curve?.reporter.publicKey,
      ],
    });
  });

  it('keeps existing files unless --force, and replaces only the kinds named', async () => {
    const keyDir = join(dir, 'rotate');
    expect(await main(['keys', '--dir', keyDir])).toBe(0);
    const read = (name: string) => readFileSync(join(keyDir, name), 'utf8');
    const [stratum, reporter] = [read('stratum.key'), read('reporter.key')];
    output.err = '';
    expect(await main(['keys', '--dir', keyDir])).toBe(1);
    expect(output.err).toMatch(/^hashwire keys: .*jobmanager\.key.* already exist; --force replaces them/);
    expect(read('stratum.key')).toBe(stratum);
    output.out = '';
    expect(await main(['keys', 'stratum', '--dir', keyDir, '--force'])).toBe(0);
    expect(read('stratum.key')).not.toBe(stratum);
    expect(read('reporter.key')).toBe(reporter);
    expect(output.out).toMatch(/^stratum = \{ publicKey = "/m);
    expect(output.out).not.toMatch(/^reporter = /m);
    await expect(main(['keys', 'redis'])).rejects.toThrow('unknown key name "redis"');
  });

  it('an off-loopback config without rpc.curve is refused by config check, naming the setting', async () => {
    const file = join(dir, 'open.toml');
    writeFileSync(file, CHAIN);
    expect(await main(['config', 'check', '--config', file])).toBe(1);
    expect(output.err).toMatch(/rpc\.curve: needed: rpc\.host 10\.0\.0\.3 is not loopback/);
  });
});
