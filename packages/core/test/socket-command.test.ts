import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { socketCommand } from '@hashwire/core';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: (() => unknown)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function unixServer(onLine: (line: string, reply: (text: string) => void) => void): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hw-sock-'));
  const socketPath = path.join(dir, 's.sock');
  // Half-open allowed: a server that does not answer keeps the connection (as a stuck HAProxy would).
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString();
      const end = text.indexOf('\n');
      if (end >= 0) onLine(text.slice(0, end), (answer) => socket.end(answer));
    });
    socket.on('error', () => {});
  });
  server.listen(socketPath);
  await once(server, 'listening');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => server.close());
  return socketPath;
}

describe('socketCommand', () => {
  it('sends one line and returns everything written before the close', async () => {
    const socketPath = await unixServer((line, reply) => reply(`you said ${line}\nand more\n`));
    expect(await socketCommand(socketPath, 'show info')).toBe('you said show info\nand more\n');
  });

  it('names the socket when nothing listens there', async () => {
    const socketPath = path.join(tmpdir(), `hw-missing-${process.pid}.sock`);
    await expect(socketCommand(socketPath, 'show info')).rejects.toThrow(`${socketPath}: connect ENOENT`);
  });

  it('gives up after the timeout when the answer never ends', async () => {
    const socketPath = await unixServer(() => {});
    await expect(socketCommand(socketPath, 'hang', 100)).rejects.toThrow(
      `${socketPath}: no complete answer to "hang" within 100 ms`,
    );
  });
});
