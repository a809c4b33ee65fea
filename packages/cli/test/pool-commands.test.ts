import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '@hashwire/cli';
import { poolConfigReference } from '@hashwire/core';
import { blocknotifyCommand } from '@hashwire/jobmanager';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis, registerService } from '@hashwire/registry';
import { type RedisServer, getFreePort, startHaproxy, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CapturedOutput, captureOutput } from './capture-output.js';

const ADDRESS = 'rltc1qqurswpc8qurswpc8qurswpc8qurswpc8ntpxlg';
const MAIN_ADDRESS = 'ltc1qpyysjzgfpyysjzgfpyysjzgfpyysjzgf0asqjy';
const POOL = `
[[chains]]
daemons = [{ url = "http://rpc:pw@127.0.0.1:19443/" }]
payouts = [{ address = "${ADDRESS}" }]

[[chains]]
id = "second"
daemons = [{ url = "http://127.0.0.1:19543/", cookieFile = "/var/lib/ltc2/.cookie" }]
payouts = [{ address = "${ADDRESS}" }]
bind = ":3335"

[stratum]
count = 3
`;

let dir: string;
let file: string;
let output: CapturedOutput;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hashwire-pool-cmd-'));
  file = join(dir, 'pool.toml');
  writeFileSync(file, POOL);
  output = captureOutput();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

describe('hashwire config check', () => {
  it('says what the pool runs and exits 0', async () => {
    expect(
      await main(['config', 'check', '--config', file, '--set', 'redis.url=redis://:hunter2@10.1.2.3:6380']),
    ).toBe(0);
    expect(output.out).toBe(
      'config OK: 2 chains (litecoin-regtest, second), 4 jobmanagers, 6 stratum servers, 4 reporters, 1 api instance, HAProxy on :3333 (litecoin-regtest), :3335 (second), api on 127.0.0.1:8080, Redis redis://:***@10.1.2.3:6380 prefix hw:\n',
    );
    expect(output.err).toBe('');
  });

  it('lists every problem with its key path, allowed values and source, and exits 1', async () => {
    writeFileSync(file, `${POOL}vardiff = 3\n[log]\nlevel = "loud"\n`);
    vi.stubEnv('HASHWIRE_REPORTER__COUNT', 'two');
    expect(await main(['config', 'check', '--config', file, '--set', 'haproxy.bind=3333'])).toBe(1);
    expect(output.out).toBe('');
    expect(output.err.split('\n')).toEqual([
      `config: 4 problems in ${file}:`,
      '  stratum.vardiff: must be a table, got number 3',
      '  reporter.count: must be an integer, got the string "two" (allowed: an integer from 0 to 64) [from HASHWIRE_REPORTER__COUNT]',
      '  haproxy.bind: must be host:port or :port, got the string "3333" [from --set haproxy.bind=3333]',
      '  log.level: the string "loud" is not allowed (allowed: fatal, error, warn, info, debug, trace, silent)',
      '',
    ]);
  });

  it('catches a payout address of the wrong network before anything runs', async () => {
    expect(await main(['config', 'check', '--config', file, '--set', 'chains[1].network=main'])).toBe(1);
    expect(output.err).toContain('chains[1].payouts[0].address: address');
    expect(output.err).toContain('expected litecoin main');
  });

  it('shows the config with every default filled in', async () => {
    expect(await main(['config', 'show', '--config', file])).toBe(0);
    const shown = JSON.parse(output.out);
    expect(shown.stratum.vardiff.targetSharesPerMin).toBe(18);
    expect(shown.chains[1].id).toBe('second');
  });

  it('passes examples/pool.toml once its placeholder payout address is replaced', async () => {
    const example = fileURLToPath(new URL('../../../examples/pool.toml', import.meta.url));
    expect(await main(['config', 'check', '--config', example])).toBe(1);
    expect(output.err.trim().split('\n')).toEqual([
      `config: 1 problem in ${example}:`,
      expect.stringMatching(
        /^ {2}chains\[0\]\.payouts\[0\]\.address: address "PUT-YOUR-LITECOIN-ADDRESS-HERE" is not valid/,
      ),
    ]);
    const payout = `chains[0].payouts[0].address=${MAIN_ADDRESS}`;
    expect(await main(['config', 'check', '--config', example, '--set', payout])).toBe(0);
    expect(output.out).toBe(
      'config OK: 1 chain (ltc), 2 jobmanagers, 2 stratum servers, 2 reporters, 2 api instances, HAProxy on :3333, api on 127.0.0.1:8080, Redis redis://:***@127.0.0.1:6379/0 prefix ltc:\n',
    );
    // Its commented second chain works as written, on its own HAProxy port.
    const twoChains = join(dir, 'two-chains.toml');
    writeFileSync(
      twoChains,
      readFileSync(example, 'utf8')
        .replace(
          /^# (\[\[chains\]\]|id = "btc"|coin = |network = "main"|bind = |daemons = |payouts = )/gm,
          '$1',
        )
        .replace('PUT-YOUR-BITCOIN-ADDRESS-HERE', 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4'),
    );
    expect(await main(['config', 'check', '--config', twoChains, '--set', payout])).toBe(0);
    expect(output.out).toContain(
      'config OK: 2 chains (ltc, btc), 4 jobmanagers, 4 stratum servers, 4 reporters, 2 api instances, HAProxy on :3333 (ltc), :3335 (btc),',
    );
  });

  it('prints the key reference docs/configuration.md is made of', async () => {
    expect(await main(['config', 'reference'])).toBe(0);
    expect(output.out).toBe(poolConfigReference());
  });

  it('refuses an unknown subcommand', async () => {
    await expect(main(['config', 'chek'])).rejects.toThrow(
      'unknown config command "chek"; use check, show or reference',
    );
  });
});

describe('hashwire run', () => {
  it('refuses an instance the pool does not have, naming the range', async () => {
    expect(await main(['run', 'stratum', '--instance', '7', '--config', file])).toBe(1);
    expect(output.err).toBe('run: no stratum instance 7 in this pool; instances: 1 to 6\n');
    await expect(main(['run', 'miner', '--instance', '1'])).rejects.toThrow(
      'run needs one service kind: jobmanager, stratum, reporter, api, payouts, got "miner"',
    );
    await expect(main(['run', 'reporter', '--instance', 'x'])).rejects.toThrow(
      '--instance must be a whole number from 1, got "x"',
    );
  });
});

describe('hashwire render', () => {
  let redisServer: RedisServer;
  beforeAll(async () => {
    redisServer = await startRedis();
  });
  afterAll(async () => {
    await redisServer?.stop();
  });

  it("renders haproxy.cfg with the live stratum servers; HAProxy accepts it and sends each chain's miners to that chain's servers", async () => {
    const prefix = `render-${randomUUID().slice(0, 8)}:`;
    const redis = connectRedis(redisServer.url);
    const keys = createKeyBuilder({ prefix });
    // A stand-in stratum server per chain: a TCP listener that records what arrives.
    const sockets: Socket[] = [];
    const standIn = async (chain: string, id: string) => {
      const received: Buffer[] = [];
      const listener: Server = createServer((socket) => {
        sockets.push(socket);
        socket.on('error', () => {}); // HAProxy resets its side when it stops
        socket.on('data', (chunk) => received.push(chunk));
      });
      await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
      const port = (listener.address() as { port: number }).port;
      const registration = await registerService({
        redis,
        keys,
        kind: 'stratum',
        id,
        chain,
        stratum: `127.0.0.1:${port}`,
      });
      return { port, listener, registration, text: () => Buffer.concat(received).toString('latin1') };
    };
    const first = await standIn('litecoin-regtest', 'stratum-litecoin-regtest-1');
    const second = await standIn('second', 'stratum-second-1');
    const front = await getFreePort();
    const secondFront = await getFreePort();
    const apiFront = await getFreePort();
    const cfg = join(dir, 'haproxy.cfg');
    try {
      const sets = [
        `redis.url=${redisServer.url}`,
        `redis.keyPrefix=${prefix}`,
        `haproxy.bind=127.0.0.1:${front}`,
        `chains[1].bind=127.0.0.1:${secondFront}`,
        `api.bind=127.0.0.1:${apiFront}`,
        `haproxy.statsSocket=${join(dir, 'haproxy.sock')}`,
      ].flatMap((set) => ['--set', set]);
      expect(await main(['render', 'haproxy', '--config', file, ...sets, '--out', cfg])).toBe(0);
      const text = readFileSync(cfg, 'utf8');
      expect(text).toContain(`server stratum-litecoin-regtest-1 127.0.0.1:${first.port}`);
      expect(text).toContain(`server stratum-second-1 127.0.0.1:${second.port}`);
      expect(text).toContain(`bind 127.0.0.1:${front}`);
      expect(text).toContain(`bind 127.0.0.1:${secondFront}`);
      // The api's HTTP frontend, on api.bind (its instances come from the registry as they start).
      expect(text).toMatch(
        new RegExp(`frontend api_in\\n    mode http\\n    bind 127\\.0\\.0\\.1:${apiFront}\\n`),
      );
      expect(output.err).toBe(`render: wrote ${cfg}\n`);

      // startHaproxy runs `haproxy -c` on it first, then the real thing.
      const haproxy = await startHaproxy(text);
      try {
        const miners = [connect(front, '127.0.0.1'), connect(secondFront, '127.0.0.1')];
        for (const miner of miners) miner.on('error', () => {});
        miners[0]!.write('{"id":1,"method":"mining.subscribe","params":["for-the-first-chain"]}\n');
        miners[1]!.write('{"id":1,"method":"mining.subscribe","params":["for-the-second-chain"]}\n');
        await waitFor(() => first.text().includes('for-the-first-chain'), {
          what: "the first chain's miner at the first chain's stratum server",
        });
        await waitFor(() => second.text().includes('for-the-second-chain'), {
          what: "the second chain's miner at the second chain's stratum server",
        });
        expect(first.text()).not.toContain('for-the-second-chain');
        expect(second.text()).not.toContain('for-the-first-chain');
        // HAProxy put a PROXY v2 header in front (signature \r\n\r\n\0\r\nQUIT\n).
        expect(first.text().slice(0, 12)).toBe(
          Buffer.from('0d0a0d0a000d0a515549540a', 'hex').toString('latin1'),
        );
        for (const miner of miners) miner.destroy();
      } finally {
        await haproxy.stop();
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      for (const s of [first, second]) {
        s.listener.close();
        await s.registration.close();
      }
      redis.disconnect();
    }
  });

  it('says when Redis cannot be read, renders with no servers, and exits 0 only with --offline', async () => {
    const closed = await getFreePort();
    const cfg = join(dir, 'haproxy.cfg');
    const args = [
      'render',
      'haproxy',
      '--config',
      file,
      '--set',
      `redis.url=redis://127.0.0.1:${closed}`,
      '--out',
      cfg,
    ];
    expect(await main(args)).toBe(1);
    expect(output.err).toContain(`render: cannot read the registry at redis://127.0.0.1:${closed}`);
    expect(output.err).toContain('rendering with no stratum servers');
    expect(readFileSync(cfg, 'utf8')).not.toMatch(/^\s*server /m);
    output.err = '';
    expect(await main([...args, '--offline'])).toBe(0);
    expect(output.err).not.toContain('cannot read the registry');
  });

  it('renders circus.ini whose watchers run hashwire run with this config', async () => {
    expect(await main(['render', 'circus', '--config', file, '--set', 'log.level=debug'])).toBe(0);
    expect(output.out).toMatch(/\[watcher:stratum\]/);
    expect(output.out).toContain(
      `run stratum --config ${file} --set log.level=debug --instance $(circus.wid)`,
    );
    expect(output.out).toMatch(/numprocesses = 6/);
    await expect(main(['render', 'circus'])).rejects.toThrow('render circus needs --config FILE');
  });

  it('prints each chain’s -blocknotify line: redis-cli publishing on the channel its jobmanagers listen on', async () => {
    writeFileSync(file, POOL.replace('[[chains]]\ndaemons', '[[chains]]\nblocknotify = true\ndaemons'));
    const url = "redis://:it's@10.1.2.3:6380";
    expect(await main(['render', 'blocknotify', '--config', file, '--set', `redis.url=${url}`])).toBe(0);
    const keys = createKeyBuilder({ prefix: 'hw:' });
    expect(output.out).toBe(
      [
        '# litecoin-regtest',
        `blocknotify=${blocknotifyCommand(url, keys.blocknotifyChannel('litecoin-regtest'))}`,
        '# second (blocknotify = false in the config: its jobmanagers do not listen)',
        `blocknotify=${blocknotifyCommand(url, keys.blocknotifyChannel('second'))}`,
        '',
      ].join('\n'),
    );
    expect(output.out).toContain(
      "blocknotify=redis-cli -u 'redis://:it'\\''s@10.1.2.3:6380' PUBLISH 'hw:ev:blocknotify:litecoin-regtest' %s",
    );
    writeFileSync(
      file,
      `${POOL}\n[redis.sentinel]\nname = "m"\nsentinels = [{ host = "127.0.0.1", port = 26379 }]\n`,
    );
    await expect(main(['render', 'blocknotify', '--config', file])).rejects.toThrow(
      /redis-cli needs one Redis URL, and this config names Sentinel.*hw:ev:blocknotify:litecoin-regtest/,
    );
  });
});
