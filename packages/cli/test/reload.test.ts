import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '@hashwire/cli';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis, registerService } from '@hashwire/registry';
import { type RedisServer, getFreePort, startHaproxy, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { captureOutput } from './capture-output.js';

const ADDRESS = 'rltc1qqurswpc8qurswpc8qurswpc8qurswpc8ntpxlg';
const POOL = `
[[chains]]
daemons = [{ url = "http://rpc:pw@127.0.0.1:19443/" }]
payouts = [{ address = "${ADDRESS}" }]

[api]
count = 0
`;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

let redisServer: RedisServer;
beforeAll(async () => {
  redisServer = await startRedis();
});
afterAll(async () => {
  await redisServer?.stop();
});

/** A stand-in stratum server: a TCP listener that answers every chunk with `<id>:<chunk>`. */
async function standIn(id: string): Promise<number> {
  const sockets = new Set<Socket>();
  const listener: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    // The PROXY v2 header comes first, in its own chunk or not: answer only the text after it.
    socket.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      const at = text.indexOf('hello');
      if (at >= 0) socket.write(`${id}:${text.slice(at)}`);
    });
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    listener.close();
  });
  return (listener.address() as { port: number }).port;
}

/** Writes `text` and resolves with the answer; rejects when the connection closes first (no server). */
function say(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const closed = () => reject(new Error(`closed before an answer to "${text}"`));
    socket.once('close', closed);
    socket.once('data', (data) => {
      socket.off('close', closed);
      resolve(String(data));
    });
    socket.write(text);
  });
}

describe('hashwire reload haproxy', () => {
  it('renders the live servers into the file and reloads through the master: same master, a new worker with the servers, old connections kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hashwire-reload-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'pool.toml');
    writeFileSync(file, POOL);
    const prefix = `reload-${process.pid}:`;
    const redis = connectRedis(redisServer.url);
    cleanups.push(() => redis.disconnect());
    const keys = createKeyBuilder({ prefix });
    const front = await getFreePort();
    const sets = [
      `redis.url=${redisServer.url}`,
      `redis.keyPrefix=${prefix}`,
      `haproxy.bind=127.0.0.1:${front}`,
      `haproxy.statsSocket=${join(dir, 'haproxy.sock')}`,
    ];
    // HAProxy as the follower's deployments run it: the file rendered with no servers.
    const cfg = join(dir, 'haproxy.cfg');
    const output = captureOutput();
    const args = (...more: string[]) => [
      '--config',
      file,
      ...[...sets, ...more].flatMap((s) => ['--set', s]),
    ];
    expect(await main(['render', 'haproxy', ...args(), '--offline', '--out', cfg])).toBe(0);
    const haproxy = await startHaproxy(readFileSync(cfg, 'utf8'));
    cleanups.push(() => haproxy.stop());
    const { masterPid, pid: firstWorker } = haproxy;
    const reloadArgs = args(
      `haproxy.configFile=${haproxy.configFile}`,
      `haproxy.masterSocket=${haproxy.masterSocket}`,
    );

    // A stratum server registers; a miner reaches it through the first worker (the server
    // added as the follower would, at runtime).
    const port = await standIn('st-a');
    const registration = await registerService({
      redis,
      keys,
      kind: 'stratum',
      id: 'st-a',
      chain: 'litecoin-regtest',
      stratum: `127.0.0.1:${port}`,
    });
    cleanups.push(() => registration.close());
    await haproxy.command(`add server stratum/st-a 127.0.0.1:${port} send-proxy-v2`);
    await haproxy.command('enable server stratum/st-a');
    const held = connect(front, '127.0.0.1');
    cleanups.push(() => held.destroy());
    expect(await say(held, 'hello before')).toBe('st-a:hello before');

    output.out = '';
    expect(await main(['reload', 'haproxy', ...reloadArgs]), output.err).toBe(0);
    const procs = await haproxy.processes();
    const worker = procs.workers[0]?.pid;
    expect([procs.master.pid, procs.master.reloads, procs.oldWorkers.map((w) => w.pid)]).toEqual([
      masterPid,
      1,
      [firstWorker],
    ]);
    expect(output.out).toBe(
      `reload: haproxy master ${masterPid} reloaded on ${haproxy.configFile} (1 stratum server) in ${/in (\d+) ms/.exec(output.out)?.[1]} ms: worker ${worker} serves; old workers ${firstWorker} keep their connections and leave with the last one\n`,
    );
    // The new worker has the server from its file, before any follower: a new miner gets there.
    expect(readFileSync(haproxy.configFile, 'utf8')).toContain(`server st-a 127.0.0.1:${port}`);
    const fresh = connect(front, '127.0.0.1');
    cleanups.push(() => fresh.destroy());
    expect(await say(fresh, 'hello after')).toBe('st-a:hello after');
    // The miner on the old worker never noticed.
    expect(await say(held, 'hello still')).toBe('st-a:hello still');
  });

  it('does not reload when the registry cannot be read, nor with a file HAProxy rejects', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hashwire-reload-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'pool.toml');
    writeFileSync(file, POOL);
    const front = await getFreePort();
    const base = [`haproxy.bind=127.0.0.1:${front}`, `haproxy.statsSocket=${join(dir, 'haproxy.sock')}`];
    const cfg = join(dir, 'haproxy.cfg');
    const output = captureOutput();
    const args = (...more: string[]) => [
      '--config',
      file,
      ...[...base, ...more].flatMap((s) => ['--set', s]),
    ];
    expect(await main(['render', 'haproxy', ...args(), '--offline', '--out', cfg])).toBe(0);
    const haproxy = await startHaproxy(readFileSync(cfg, 'utf8'));
    cleanups.push(() => haproxy.stop());
    const before = readFileSync(haproxy.configFile, 'utf8');
    const at = [`haproxy.configFile=${haproxy.configFile}`, `haproxy.masterSocket=${haproxy.masterSocket}`];

    const closed = await getFreePort();
    output.err = '';
    expect(await main(['reload', 'haproxy', ...args(`redis.url=redis://127.0.0.1:${closed}`, ...at)])).toBe(
      1,
    );
    expect(output.err).toMatch(
      new RegExp(
        `^reload: haproxy not reloaded: cannot read the registry at redis://127\\.0\\.0\\.1:${closed} .*nowhere to go`,
      ),
    );

    // A TLS certificate that does not exist: HAProxy's own words, and the file stays as it was.
    output.err = '';
    const rejected = args(
      `redis.url=${redisServer.url}`,
      `haproxy.tls.certFile=${join(dir, 'missing.pem')}`,
      `haproxy.tls.bind=127.0.0.1:${await getFreePort()}`,
      ...at,
    );
    expect(await main(['reload', 'haproxy', ...rejected])).toBe(1);
    expect(output.err).toMatch(/^reload: haproxy not reloaded: haproxy rejected .*missing\.pem/s);
    expect(readFileSync(haproxy.configFile, 'utf8')).toBe(before);
    const procs = await haproxy.processes();
    expect([procs.master.reloads, procs.workers.map((w) => w.pid)]).toEqual([0, [haproxy.pid]]);
  });
});
