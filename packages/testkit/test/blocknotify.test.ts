import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { promisify } from 'node:util';
import {
  type BlocknotifyReceiver,
  createBlocknotifyReceiver,
  tcpBlocknotifyCommand,
} from '@hashwire/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const HASH = 'a5'.repeat(32);

const receivers: BlocknotifyReceiver[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.close();
});

async function receiver(): Promise<BlocknotifyReceiver> {
  const r = await createBlocknotifyReceiver();
  receivers.push(r);
  return r;
}

/** Runs the command the way litecoind does: through /bin/sh with every `%s` replaced by the hash. */
function runAsDaemon(command: string, hash: string): Promise<unknown> {
  return run('/bin/sh', ['-c', command.replaceAll('%s', hash)]);
}

function tokenOf(r: BlocknotifyReceiver): string {
  return r.command().match(/echo (\S+) /)?.[1] as string;
}

async function send(port: number, data: string | string[]): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  for (const part of Array.isArray(data) ? data : [data]) {
    await new Promise<void>((resolve, reject) =>
      socket.write(part, (err) => (err ? reject(err) : resolve())),
    );
  }
  return socket;
}

describe('blocknotify receiver', () => {
  it('gets the hash from the command a daemon runs through /bin/sh', async () => {
    const r = await receiver();
    expect(r.host).toBe('127.0.0.1');
    expect(r.port).toBeGreaterThan(0);
    const block = once(r, 'block');
    const started = performance.now();
    await runAsDaemon(r.command(), HASH);
    expect(await block).toEqual([HASH, '']);
    // Spawning sh and bash dominates; the notification itself is immediate.
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('labels the daemon that sent the notification', async () => {
    const r = await receiver();
    const block = once(r, 'block');
    await runAsDaemon(r.command('node1'), HASH);
    expect(await block).toEqual([HASH, 'node1']);
  });

  it('produces a command with the token, host, port and %s placeholder', () => {
    expect(tcpBlocknotifyCommand('127.0.0.1', 4321, 'tok', 'n0')).toBe(
      "bash -c 'echo tok n0 %s >/dev/tcp/127.0.0.1/4321'",
    );
    expect(tcpBlocknotifyCommand('127.0.0.1', 4321, 'tok')).toBe(
      "bash -c 'echo tok %s >/dev/tcp/127.0.0.1/4321'",
    );
  });

  it('refuses a source label that would break the shell command', async () => {
    const r = await receiver();
    expect(() => r.command("x'; rm -rf /")).toThrow(/blocknotify source/);
  });

  it('ignores senders without the token', async () => {
    const r = await receiver();
    const blocks: string[] = [];
    r.on('block', (hash) => blocks.push(hash));
    const rejected = once(r, 'rejected');
    const socket = await send(r.port, `0123456789abcdef0123456789abcdef ${HASH}\n`);
    expect(await rejected).toEqual(['bad token']);
    socket.destroy();
    expect(blocks).toEqual([]);
  });

  it('reassembles a line split at every byte', async () => {
    const r = await receiver();
    const block = once(r, 'block');
    const socket = await send(r.port, [...`${tokenOf(r)} ${HASH}\n`]);
    expect(await block).toEqual([HASH, '']);
    socket.destroy();
  });

  it('rejects malformed and overlong lines', async () => {
    const r = await receiver();
    const token = tokenOf(r);
    const malformed = once(r, 'rejected');
    const a = await send(r.port, `${token} not-a-hash\n`);
    expect(await malformed).toEqual(['malformed line']);
    a.destroy();

    const tooLong = once(r, 'rejected');
    const b = await send(r.port, 'x'.repeat(1_000));
    expect(await tooLong).toEqual(['line too long']);
    await once(b, 'close');
  });

  it('drops open connections on close', async () => {
    const r = await createBlocknotifyReceiver();
    const socket = await send(r.port, 'partial');
    // events.once would reject on the reset that closing causes: wait for 'close' itself.
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.on('close', resolve));
    await r.close();
    await closed;
  });
});
