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

  it('reloads hitlessly: a new process takes over and the old one leaves', async () => {
    const front = await getFreePort();
    const haproxy = await start(config(front, await echoServer()));
    const oldPid = haproxy.pid;
    await haproxy.reload();
    expect(haproxy.pid).not.toBe(oldPid);
    await waitFor(() => !isAlive(oldPid), { timeoutMs: 10_000, what: 'the old haproxy to exit' });
    expect(await roundTrip(front, 'again')).toBe('echo:again');
  });

  it('stop leaves no haproxy process', async () => {
    const haproxy = await startHaproxy(config(await getFreePort(), await echoServer()));
    const pid = haproxy.pid;
    await haproxy.stop();
    expect(isAlive(pid)).toBe(false);
  });
});
