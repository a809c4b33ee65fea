import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type PoolConfigIssue, chainFronts, loadPoolConfig } from '@hashwire/core';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'hashwire-pool-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function write(text: string, ext = 'toml'): string {
  const file = join(dir, `pool-${++files}.${ext}`);
  writeFileSync(file, text);
  return file;
}

const CHAIN = `
[[chains]]
daemons = [{ url = "http://user:pass@127.0.0.1:19443/" }]
payouts = [{ address = "rltc1qexample" }]
`;

/** The issues of a config that must fail (the test fails if it loads). */
function issuesOf(options: Parameters<typeof loadPoolConfig>[0]): PoolConfigIssue[] {
  try {
    loadPoolConfig(options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).issues];
  }
  throw new Error('the config loaded');
}

describe('loadPoolConfig', () => {
  it('fills every default around the one chain a minimal file gives', () => {
    const config = loadPoolConfig({ file: write(CHAIN), env: {} });
    expect(config.chains).toEqual([
      expect.objectContaining({
        id: 'litecoin-regtest',
        coin: 'litecoin',
        network: 'regtest',
        daemons: [expect.objectContaining({ url: 'http://user:pass@127.0.0.1:19443/', timeoutMs: 30_000 })],
        payouts: [{ address: 'rltc1qexample' }],
        poolTag: '/hashwire/',
      }),
    ]);
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379', keyPrefix: 'hw:' });
    expect(config.stratum.count).toBe(2);
    expect(config.stratum.vardiff.targetSharesPerMin).toBe(18);
    expect(config.haproxy.bind).toBe(':3333');
    expect(config.log.level).toBe('info');
    // Relative paths are the config file's folder's.
    expect(config.stratum.spoolDir).toBe(join(dir, 'var/spool'));
    expect(config.haproxy.statsSocket).toBe(join(dir, 'var/haproxy.sock'));
  });

  it('takes defaults < file < env < --set, each value parsed as a TOML scalar', () => {
    const file = write(`${CHAIN}\n[stratum]\ncount = 3\n[stratum.vardiff]\nenabled = true\n`);
    expect(loadPoolConfig({ env: {}, file }).stratum.count).toBe(3);
    const env = { HASHWIRE_STRATUM__COUNT: '4', HASHWIRE_STRATUM__VARDIFF__ENABLED: 'false' };
    const fromEnv = loadPoolConfig({ file, env });
    expect(fromEnv.stratum.count).toBe(4);
    expect(fromEnv.stratum.vardiff.enabled).toBe(false);
    const fromSet = loadPoolConfig({ file, env, sets: ['stratum.count=5', 'stratum.count=6'] });
    expect(fromSet.stratum.count).toBe(6);
    // Camel-case keys from SCREAMING_SNAKE env names; list indexes in either spelling.
    const deep = loadPoolConfig({
      file,
      env: {
        HASHWIRE_STRATUM__VARDIFF__TARGET_SHARES_PER_MIN: '7.5',
        HASHWIRE_CHAINS__0__PAYOUTS__0__ADDRESS: 'rltc1qfromenv',
      },
      sets: ['chains[0].daemons.0.url=http://rpc:pw@127.0.0.1:29443', 'rpc.portRange=[28100, 28199]'],
    });
    expect(deep.stratum.vardiff.targetSharesPerMin).toBe(7.5);
    expect(deep.chains[0]?.payouts[0]?.address).toBe('rltc1qfromenv');
    expect(deep.chains[0]?.daemons[0]?.url).toBe('http://rpc:pw@127.0.0.1:29443');
    expect(deep.rpc.portRange).toEqual([28100, 28199]);
  });

  it('keeps text as text for keys that take a string, quoted or not', () => {
    const config = loadPoolConfig({
      file: write(CHAIN),
      env: {},
      sets: ['redis.keyPrefix=123', 'chains.0.poolTag="true"'],
    });
    expect(config.redis.keyPrefix).toBe('123');
    expect(config.chains[0]?.poolTag).toBe('true');
  });

  it('leaves HASHWIRE_ variables without a `__` path alone (the bins and testkit use some)', () => {
    const config = loadPoolConfig({
      file: write(CHAIN),
      env: { HASHWIRE_STRATUM_CONFIG: '{}', HASHWIRE_CACHE_DIR: '/tmp/x', PATH: '/bin' },
    });
    expect(config.stratum.count).toBe(2);
  });

  it('reads the same pool from YAML and JSON', () => {
    const yaml = write(
      'chains:\n  - id: ltc\n    daemons: [{ url: "http://u:p@127.0.0.1:19443" }]\n    payouts: [{ address: rltc1qexample }]\nstratum:\n  count: 1\n',
      'yaml',
    );
    const json = write(
      JSON.stringify({
        chains: [
          {
            id: 'ltc',
            daemons: [{ url: 'http://u:p@127.0.0.1:19443' }],
            payouts: [{ address: 'rltc1qexample' }],
          },
        ],
        stratum: { count: 1 },
      }),
      'json',
    );
    const fromYaml = loadPoolConfig({ file: yaml, env: {} });
    expect(fromYaml.chains[0]?.id).toBe('ltc');
    expect(fromYaml.stratum.count).toBe(1);
    expect(loadPoolConfig({ file: json, env: {} })).toEqual(fromYaml);
  });

  it('names every problem of a file at once, each with its path and what is allowed', () => {
    const file = write(`${CHAIN}
[stratum]
cont = 3
extranonce1Size = 40
[stratum.vardiff]
targetSharesPerMin = "fast"
[log]
level = "verbose"
[haproxy]
enabled = "yes"
`);
    const issues = issuesOf({ file, env: {} });
    expect(issues).toEqual(
      expect.arrayContaining([
        {
          path: 'stratum.cont',
          message: 'unknown key; did you mean "count"?',
          allowed: expect.stringContaining('count, host'),
        },
        {
          path: 'stratum.extranonce1Size',
          message: 'must be at most 8, got 40',
          allowed: 'an integer from 3 to 8',
        },
        {
          path: 'stratum.vardiff.targetSharesPerMin',
          message: 'must be a number, got the string "fast"',
          allowed: 'a number above 0',
        },
        {
          path: 'log.level',
          message: 'the string "verbose" is not allowed',
          allowed: 'fatal, error, warn, info, debug, trace, silent',
        },
        {
          path: 'haproxy.enabled',
          message: 'must be true or false, got the string "yes"',
          allowed: 'true, false',
        },
      ]),
    );
    expect(issues).toHaveLength(5);
    let message = '';
    try {
      loadPoolConfig({ file, env: {} });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split('\n')).toHaveLength(5);
    expect(message).toContain(
      'log.level: the string "verbose" is not allowed (allowed: fatal, error, warn, info, debug, trace, silent)',
    );
  });

  it('says what is missing when required keys are absent', () => {
    expect(issuesOf({ env: {} })).toEqual([{ path: 'chains', message: 'is required (a list)' }]);
    const issues = issuesOf({ file: write('[[chains]]\ncoin = "bitcoin"\n'), env: {} });
    expect(issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'chains[0].daemons: is required (a list)',
      'chains[0].payouts: is required (a list)',
    ]);
    expect(issuesOf({ file: write('chains = []\n'), env: {} })).toEqual([
      { path: 'chains', message: 'needs at least 1 entry, got 0' },
    ]);
  });

  it('refuses a chain named pool: events:{pool} is the pool-wide event stream', () => {
    const issues = issuesOf({ file: write(`${CHAIN}id = "pool"\n`), env: {} });
    expect(issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'chains[0].id: "pool" is reserved (the pool-wide event stream); choose another chain id',
    ]);
    expect(() => loadPoolConfig({ file: write(`${CHAIN}id = "pool-2"\n`), env: {} })).not.toThrow();
  });

  it('suggests the allowed value nearest to a misspelt one', () => {
    const [issue] = issuesOf({ file: write(`${CHAIN}network = "regtes"\n`), env: {} });
    expect(issue).toEqual({
      path: 'chains[0].network',
      message: 'the string "regtes" is not allowed; did you mean "regtest"?',
      allowed: 'main, test, regtest',
    });
  });

  it('names the env variable or flag a bad value or unknown key came from', () => {
    const issues = issuesOf({
      file: write(CHAIN),
      env: {
        HASHWIRE_STRATUM__COUNT: 'many',
        HASHWIRE_STRATUMM__COUNT: '1',
        HASHWIRE_REDIS__URL: 'localhost:6379',
      },
      sets: ['jobmanager.count=-1', 'stratum.vardif.enabled=false', 'nonsense'],
    });
    expect(issues).toEqual(
      expect.arrayContaining([
        {
          path: 'stratum.count',
          message: 'must be an integer, got the string "many"',
          allowed: 'an integer from 0 to 256',
          source: 'HASHWIRE_STRATUM__COUNT',
        },
        expect.objectContaining({
          path: 'STRATUMM',
          message: 'unknown key; did you mean "stratum"?',
          source: 'HASHWIRE_STRATUMM__COUNT',
        }),
        {
          path: 'redis.url',
          message: 'must start with redis:// or rediss://, got the string "localhost:6379"',
          source: 'HASHWIRE_REDIS__URL',
        },
        {
          path: 'jobmanager.count',
          message: 'must be at least 0, got -1',
          allowed: 'an integer from 0 to 64',
          source: '--set jobmanager.count=-1',
        },
        expect.objectContaining({
          path: 'stratum.vardif',
          message: 'unknown key; did you mean "vardiff"?',
          source: '--set stratum.vardif.enabled=false',
        }),
        expect.objectContaining({ message: '--set nonsense: expected path=value, e.g. stratum.count=3' }),
      ]),
    );
    expect(issues).toHaveLength(6);
  });

  it('checks what spans several keys: chain ids, port ranges, one way to reach Redis, daemon credentials', () => {
    const file = write(`${CHAIN}${CHAIN}
[[chains]]
id = "third"
daemons = [{ url = "http://127.0.0.1:19443/" }]
payouts = [{ address = "rltc1qexample" }]

[redis]
url = "redis://127.0.0.1:6379"
sentinel = { name = "pool", sentinels = [{ host = "10.0.0.1", port = 26379 }] }
[rpc]
portRange = [28999, 28000]
[haproxy]
enabled = false # HAProxy's ports have a test of their own
`);
    expect(issuesOf({ file, env: {} }).map((i) => `${i.path}: ${i.message}`)).toEqual([
      'redis: give one of url, sentinel, cluster, not url and sentinel',
      'rpc.portRange: first port 28999 is above last port 28000',
      'chains[1].id: "litecoin-regtest" is already the id of chains[0]; give each chain its own id',
      'chains[2].daemons[0]: needs credentials: user and password, user:password@ in the url, or cookieFile',
    ]);
  });

  it('gives every chain its own HAProxy port: further chains name theirs, no port twice', () => {
    const chain = (id: string, extra = '') =>
      `[[chains]]\nid = "${id}"\ndaemons = [{ url = "http://u:p@127.0.0.1:19443/" }]\npayouts = [{ address = "rltc1qexample" }]\n${extra}`;
    const file = write(
      [
        chain('ltc'),
        chain('no-port'),
        chain('same-port', 'bind = "0.0.0.0:3333"\n'),
        chain('tls-clash', 'bind = ":3340"\ntlsBind = ":3334"\n'),
        '[haproxy]\nstatsBind = "127.0.0.1:3340"\ntls = { certFile = "/etc/pool.pem" }\n',
      ].join('\n'),
    );
    expect(issuesOf({ file, env: {} }).map((i) => `${i.path}: ${i.message}`)).toEqual([
      'chains[1].bind: needed when HAProxy fronts several chains: each chain takes its miners on its own port (the first chain has haproxy.bind)',
      "chains[2].bind: port 3333 is already haproxy.bind's",
      "chains[3].tlsBind: port 3334 is already haproxy.tls.bind's",
      "haproxy.statsBind: port 3340 is already chains[3].bind's",
    ]);
    const noTls = write([chain('ltc'), chain('btc', 'bind = ":3335"\ntlsBind = ":3336"\n')].join('\n'));
    expect(issuesOf({ file: noTls, env: {} })).toEqual([
      expect.objectContaining({ path: 'chains[1].tlsBind', message: 'needs haproxy.tls (the certificate)' }),
    ]);
    // Each chain on its own ports loads, and says where each chain's miners connect.
    const good = write(
      [
        chain('ltc'),
        chain('btc', 'bind = ":3335"\ntlsBind = "10.0.0.2:3336"\n'),
        '[haproxy]\ntls = { certFile = "/etc/pool.pem" }\n',
      ].join('\n'),
    );
    expect(chainFronts(loadPoolConfig({ file: good, env: {} }))).toEqual([
      {
        chain: 'ltc',
        bind: ':3333',
        bindPath: 'haproxy.bind',
        tlsBind: ':3334',
        tlsBindPath: 'haproxy.tls.bind',
      },
      {
        chain: 'btc',
        bind: ':3335',
        bindPath: 'chains[1].bind',
        tlsBind: '10.0.0.2:3336',
        tlsBindPath: 'chains[1].tlsBind',
      },
    ]);
  });

  it('reports an unreadable or malformed file by name, before anything else', () => {
    const missing = join(dir, 'nope.toml');
    expect(issuesOf({ file: missing, env: {} })).toEqual([
      { path: '', message: `cannot read config file ${missing}: ENOENT` },
    ]);
    const [bad] = issuesOf({ file: write('[stratum\ncount = 1\n'), env: {} });
    expect(bad?.message).toMatch(/^config file .*pool-\d+\.toml is not valid TOML: .+/);
    const [format] = issuesOf({ file: write('x', 'ini'), env: {} });
    expect(format).toEqual(expect.objectContaining({ allowed: '.toml, .yaml, .yml, .json' }));
  });
});
