import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import {
  HaproxyConfigError,
  type HaproxyInstance,
  getFreePort,
  startHaproxy,
  waitFor,
} from '@hashwire/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A TCP server that answers each chunk with "echo:<chunk>". */
async function echoServer(): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (d) => socket.write(`echo:${d}`));
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as net.AddressInfo).port;
}

function config(frontPort: number, backPort: number): string {
  return `global
    maxconn 100

defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend fe
    bind 127.0.0.1:${frontPort}
    default_backend be

backend be
    server s1 127.0.0.1:${backPort}
`;
}

async function roundTrip(port: number, text: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(text);
  const [data] = await once(socket, 'data');
  socket.destroy();
  return String(data);
}

async function start(text: string): Promise<HaproxyInstance> {
  const haproxy = await startHaproxy(text);
  cleanups.push(() => haproxy.stop());
  return haproxy;
}

describe('startHaproxy', () => {
  it('proxies to the backend and answers on its runtime API', async () => {
    const front = await getFreePort();
    const haproxy = await start(config(front, await echoServer()));
    expect(await roundTrip(front, 'hi')).toBe('echo:hi');
    expect(await haproxy.command('show info')).toMatch(new RegExp(`^Pid: ${haproxy.pid}$`, 'm'));
    expect(existsSync(haproxy.statsSocket)).toBe(true);
  });

  it('rejects a bad config with haproxy’s own error text', async () => {
    const bad = `${config(await getFreePort(), 1)}    no_such_keyword here\n`;
    const err = await startHaproxy(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HaproxyConfigError);
    expect((err as HaproxyConfigError).output).toMatch(/no_such_keyword/);
    expect((err as Error).message).toMatch(/no_such_keyword/);
  });

  it('reloads through the master: same master, a new worker; the old one leaves once its connection closes', async () => {
    const front = await getFreePort();
    const haproxy = await start(config(front, await echoServer()));
    const { masterPid, pid: oldWorker } = haproxy;
    const held = net.connect(front, '127.0.0.1');
    await once(held, 'connect');
    held.write('held');
    await once(held, 'data');
    const reload = await haproxy.reload();
    expect([reload.masterPid, reload.previousWorkers]).toEqual([masterPid, [oldWorker]]);
    expect(haproxy.pid).toBe(reload.workerPid);
    expect(haproxy.pid).not.toBe(oldWorker);
    // The old worker keeps the connection it had, and only that.
    expect((await haproxy.processes()).oldWorkers.map((w) => w.pid)).toEqual([oldWorker]);
    held.write('still');
    expect(String((await once(held, 'data'))[0])).toBe('echo:still');
    expect(await roundTrip(front, 'again')).toBe('echo:again');
    expect(await haproxy.command('show info')).toMatch(new RegExp(`^Pid: ${haproxy.pid}$`, 'm'));
    held.destroy();
    await waitFor(() => !isAlive(oldWorker), { timeoutMs: 10_000, what: 'the old worker to exit' });
    expect((await haproxy.processes()).oldWorkers).toEqual([]);
    expect(isAlive(masterPid)).toBe(true);
  });

  it('keeps the current worker when the new config does not load', async () => {
    const front = await getFreePort();
    const haproxy = await start(config(front, await echoServer()));
    const worker = haproxy.pid;
    // Valid for `haproxy -c`, refused by the re-executed master: the port is taken by another process.
    const taken = await getFreePort();
    const blocker = net.createServer().listen(taken, '127.0.0.1');
    await once(blocker, 'listening');
    cleanups.push(() => new Promise((resolve) => blocker.close(() => resolve())));
    const err = await haproxy.reload(config(taken, 1)).catch((e: unknown) => e);
    expect((err as Error).name).toBe('HaproxyReloadError');
    expect((err as Error).message).toMatch(/did not load/);
    expect(haproxy.pid).toBe(worker);
    expect(await roundTrip(front, 'unchanged')).toBe('echo:unchanged');
  });

  it('stop leaves no haproxy process, old workers included', async () => {
    const front = await getFreePort();
    const haproxy = await startHaproxy(config(front, await echoServer()));
    const held = net.connect(front, '127.0.0.1');
    cleanups.push(async () => {
      held.destroy();
    });
    await once(held, 'connect');
    held.write('x');
    await once(held, 'data');
    const first = haproxy.pid;
    await haproxy.reload();
    const pids = [haproxy.masterPid, first, haproxy.pid];
    await haproxy.stop();
    await waitFor(() => pids.every((p) => !isAlive(p)), {
      timeoutMs: 5_000,
      what: 'every haproxy process gone',
    });
  });
});
