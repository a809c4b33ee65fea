import { once } from 'node:events';
import net from 'node:net';
import {
  LITECOIN_REGTEST,
  buildCoinbase,
  merkleBranch,
  p2pkhScript,
  sha256d,
  stratumPrevhashFromDisplay,
} from '@hashwire/chain';
import { LineFramer, parseStratumRequest } from '@hashwire/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSimArgs, runSim, simUsername } from '../src/sim.js';

/** A pool that accepts everything and stops the run after `stopAfter` submits. */
async function acceptingPool(stopAfter: number, stop: AbortController): Promise<net.Server> {
  const cb = buildCoinbase({
    params: LITECOIN_REGTEST,
    height: 700,
    coinbaseValueSat: 5e9,
    payouts: [{ script: p2pkhScript(Buffer.alloc(20, 3)) }],
    extranonce1Size: 4,
    extranonce2Size: 4,
  });
  const notify = [
    'j1',
    stratumPrevhashFromDisplay(sha256d(Buffer.of(1)).toString('hex')),
    cb.coinb1.toString('hex'),
    cb.coinb2.toString('hex'),
    merkleBranch([sha256d(Buffer.of(2))]).map((h) => h.toString('hex')),
    '20000000',
    '207fffff',
    '66000000',
    true,
  ];
  let submits = 0;
  let extranonce = 0x0a000000;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const en1 = (extranonce++).toString(16).padStart(8, '0');
    const framer = new LineFramer();
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      for (const line of framer.push(chunk)) {
        const req = parseStratumRequest(line);
        const reply = (result: unknown): void => {
          socket.write(`${JSON.stringify({ id: req.id, result, error: null })}\n`);
        };
        if (req.method === 'mining.subscribe') reply([[['mining.notify', `s${en1}`]], en1, 4]);
        else reply(true);
        if (req.method === 'mining.authorize') {
          socket.write(
            `${JSON.stringify({ id: null, method: 'mining.set_difficulty', params: [1 / 64] })}\n`,
          );
          socket.write(`${JSON.stringify({ id: null, method: 'mining.notify', params: notify })}\n`);
        }
        if (req.method === 'mining.submit' && ++submits === stopAfter) stop.abort();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

describe('hashwire sim', () => {
  it('parses its flags and names the bad one', () => {
    expect(parseSimArgs(['--port', '3333', '--username', 'ltc1qx', '--workers', '3'])).toMatchObject({
      host: '127.0.0.1',
      port: 3333,
      workers: 3,
      algorithm: 'scrypt',
      intervalMs: 5000,
    });
    expect(parseSimArgs(['--help'])).toBe('help');
    expect(() => parseSimArgs(['--username', 'a'])).toThrow(/--port is required/);
    expect(() => parseSimArgs(['--port', '1', '--username', 'a', '--workers', '1.5'])).toThrow(
      /--workers must be a positive integer, got "1.5"/,
    );
    expect(() => parseSimArgs(['--port', '1', '--username', 'a', '--algorithm', 'x11'])).toThrow(
      /--algorithm must be scrypt or sha256d/,
    );
    expect(simUsername('ltc1qx', 2)).toBe('ltc1qx.sim2');
    expect(simUsername('ltc1qx.rig{i}', 2)).toBe('ltc1qx.rig2');
    expect(simUsername('ltc1qx.rig', 2)).toBe('ltc1qx.rig');
  });

  it('mines against a pool and prints a summary per worker and in total', async () => {
    const stop = new AbortController();
    const server = await acceptingPool(6, stop);
    servers.push(server);
    const lines: string[] = [];
    const stats = await runSim({
      host: '127.0.0.1',
      port: (server.address() as net.AddressInfo).port,
      workers: 2,
      username: 'rltc1qsim',
      password: 'x',
      algorithm: 'scrypt',
      versionRolling: false,
      signal: stop.signal,
      write: (line) => lines.push(line),
    });
    expect(stats.total.accepted + stats.total.noAnswer).toBe(stats.total.submitted);
    expect(stats.total.submitted).toBeGreaterThanOrEqual(6);
    expect(lines[0]).toBe(`hashwire sim: 2 scrypt workers -> 127.0.0.1:${stats.workers[0]!.port}`);
    expect(lines.some((l) => l.includes('worker 0 rltc1qsim.sim0'))).toBe(true);
    expect(lines.some((l) => l.includes('worker 1 rltc1qsim.sim1'))).toBe(true);
    expect(lines.at(-1)).toMatch(new RegExp(`^total 2 workers .* accepted ${stats.total.accepted},`));
  });
});
