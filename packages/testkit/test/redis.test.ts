import { existsSync } from 'node:fs';
import net from 'node:net';
import { type RedisServer, getFreePort, liveProcesses, startRedis } from '@hashwire/testkit';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';

const servers: RedisServer[] = [];
const clients: Redis[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of servers.splice(0)) await s.stop();
});

async function start(options?: Parameters<typeof startRedis>[0]): Promise<RedisServer> {
  const server = await startRedis(options);
  servers.push(server);
  return server;
}

function connect(url: string): Redis {
  // No offline queue and no retries: a command against a stopped server fails at once.
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  clients.push(client);
  return client;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(true));
  });
}

describe('getFreePort', () => {
  it('hands out distinct ports that can be bound', async () => {
    const ports = await Promise.all([getFreePort(), getFreePort(), getFreePort()]);
    expect(new Set(ports).size).toBe(3);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(ports[0], '127.0.0.1', resolve));
    await new Promise((resolve) => server.close(resolve));
  });
});

describe('startRedis', () => {
  it('starts a private server on a free port, keeps nothing across restarts, and stops', async () => {
    const server = await start();
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(server.port).not.toBe(6379);
    const client = connect(server.url);
    await client.connect();
    expect(await client.ping()).toBe('PONG');
    await client.set('k', 'v');

    const pidBefore = server.pid;
    await server.restart();
    expect(server.pid).not.toBe(pidBefore);
    expect(isAlive(pidBefore)).toBe(false);
    const again = connect(server.url);
    await again.connect();
    expect(await again.get('k')).toBeNull();

    const { pid, dir, port } = server;
    await server.stop();
    servers.splice(servers.indexOf(server), 1);
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(await refused(port)).toBe(true);
  });

  it('keeps data across a restart with appendonly', async () => {
    const server = await start({ appendonly: true });
    const client = connect(server.url);
    await client.connect();
    await client.set('k', 'kept');
    await server.restart();
    const again = connect(server.url);
    await again.connect();
    expect(await again.get('k')).toBe('kept');
  });

  it('runs several servers side by side and leaves none running', async () => {
    const [a, b] = await Promise.all([start(), start()]);
    expect(a?.port).not.toBe(b?.port);
    const pids = [a?.pid, b?.pid] as number[];
    for (const s of servers.splice(0)) await s.stop();
    expect(pids.map(isAlive)).toEqual([false, false]);
    expect(liveProcesses()).toEqual([]);
  });

  it('reports a server that cannot start with its log', async () => {
    await expect(startRedis({ args: ['--no-such-option', 'x'] })).rejects.toThrow(
      /exited during start[\s\S]*no-such-option/,
    );
  });
});
