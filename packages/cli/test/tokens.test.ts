import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ApiService, createApiService } from '@hashwire/api';
import { main } from '@hashwire/cli';
import { createLogger } from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CapturedOutput, captureOutput } from './capture-output.js';

// `hashwire tokens` against a real Redis, with a real api instance that must honour what it does.

let redisServer: RedisServer;
let redis: RedisClient;
let api: ApiService;
let output: CapturedOutput;
let dir: string;
const prefix = `tk${process.pid}:`;
const keys = createKeyBuilder({ prefix });

beforeAll(async () => {
  redisServer = await startRedis();
  redis = connectRedis(redisServer.url);
  api = await createApiService({
    id: 'api-1',
    redis,
    keys,
    chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    logger: createLogger({ name: 'tokens-test', level: 'silent' }),
  });
  await api.start();
  dir = mkdtempSync(join(tmpdir(), 'hw-tokens-'));
});
afterAll(async () => {
  await api?.close();
  redis?.disconnect();
  await redisServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  output = captureOutput();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const flags = () => ['--redis', redisServer.url, '--prefix', prefix];
const tokens = (url: string, token?: string) =>
  fetch(`${url}/v1/tokens`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

describe('hashwire tokens', () => {
  it('creates an admin token without an api token, prints it once, lists it, revokes it', async () => {
    expect(
      await main(['tokens', 'create', ...flags(), '--kind', 'admin', '--name', 'first admin']),
      output.err,
    ).toBe(0);
    const token = output.out.trim();
    expect(token).toMatch(/^hwt_[A-Za-z0-9_-]{43}$/);
    expect(output.err).toMatch(/^made admin token (tok_\S+) "first admin"; the token is shown only now/);
    const id = /made admin token (tok_\S+)/.exec(output.err)![1]!;

    // The api takes it as an admin token.
    const listed = await tokens(api.url as string, token);
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { tokens: { id: string }[] }).tokens.map((t) => t.id)).toEqual([id]);

    // Through the pool config's redis section too, and list never prints a token.
    const file = join(dir, 'pool.toml');
    writeFileSync(
      file,
      `[redis]\nurl = "${redisServer.url}"\nkeyPrefix = "${prefix}"\n\n[[chains]]\ndaemons = [{ url = "http://u:p@127.0.0.1:19443/" }]\npayouts = [{ address = "rltc1qgw09vvd3gh39xgfn8phfulaqj29yu5ju4urshd" }]\n`,
    );
    output.out = '';
    expect(
      await main([
        'tokens',
        'create',
        '--config',
        file,
        '--kind',
        'account',
        '--name',
        'miner',
        '--account',
        'acctA',
        '--json',
      ]),
      output.err,
    ).toBe(0);
    const account = JSON.parse(output.out) as { id: string; token: string; kind: string; account: string };
    expect(account).toMatchObject({ kind: 'account', account: 'acctA', name: 'miner' });
    output.out = '';
    expect(await main(['tokens', 'list', '--config', file])).toBe(0);
    const lines = output.out.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+KIND\s+NAME\s+ACCOUNT\s+CREATED\s+EXPIRES$/);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/).slice(0, 4))).toEqual([
      [id, 'admin', 'first admin', '-'],
      [account.id, 'account', 'miner', 'acctA'],
    ]);
    expect(output.out).not.toContain(token);
    expect(output.out).not.toContain(account.token);

    output.out = '';
    expect(await main(['tokens', 'revoke', ...flags(), id])).toBe(0);
    expect(output.out).toMatch(new RegExp(`^revoked admin token ${id} "first admin"`));
    await waitFor(async () => (await tokens(api.url as string, token)).status === 401, { timeoutMs: 1000 });
    expect(await main(['tokens', 'revoke', ...flags(), id])).toBe(1);
    expect(output.err).toContain(`no token ${id} (hashwire tokens list shows them)`);

    // Each create and revoke is in the audit trail, by the CLI (the pool stream also has the
    // api's own service.api.* events).
    const entries = (await redis.xrange(keys.poolEvents(), '-', '+'))
      .map(([, f]) => ({
        type: f[f.indexOf('type') + 1]!,
        data: JSON.parse(f[f.indexOf('data') + 1]!),
      }))
      .filter((e) => e.type.startsWith('admin.'));
    expect(entries.map((e) => [e.type, e.data.target])).toEqual([
      ['admin.token.create', id],
      ['admin.token.create', account.id],
      ['admin.token.revoke', id],
    ]);
    for (const e of entries)
      expect(e.data.actor).toMatchObject({
        tokenId: 'cli',
        kind: 'admin',
        name: expect.stringMatching(/^hashwire tokens \(/),
      });
  });

  it('names the flag that is wrong', async () => {
    await expect(main(['tokens', 'create', ...flags(), '--kind', 'root', '--name', 'x'])).rejects.toThrow(
      /^--kind: /,
    );
    await expect(main(['tokens', 'create', ...flags(), '--kind', 'read'])).rejects.toThrow(
      '--name: required',
    );
    await expect(main(['tokens', 'create', ...flags(), '--kind', 'account', '--name', 'x'])).rejects.toThrow(
      '--account: required for an account token',
    );
    await expect(
      main(['tokens', 'create', ...flags(), '--kind', 'read', '--name', 'x', '--expires-in', 'soon']),
    ).rejects.toThrow(/^--expires-in: /);
    await expect(main(['tokens', 'revoke', ...flags()])).rejects.toThrow(/takes one token id/);
    await expect(main(['tokens', 'burn', ...flags()])).rejects.toThrow(/create, list or revoke, got burn/);
  });
});
