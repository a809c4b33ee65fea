import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DaemonPool } from '@hashwire/chain';
import { TemplateSource } from '@hashwire/jobmanager';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A daemon at its worst: it answers every `getblocktemplate`, long polls included, at once and
 * with a new `longpollid` each time (as if its mempool changed between any two calls).
 */
async function restlessDaemon() {
  const calls: Record<string, number> = {};
  let n = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const { id, method } = JSON.parse(body) as { id: number; method: string };
      calls[method] = (calls[method] ?? 0) + 1;
      n++;
      const result =
        method === 'getbestblockhash'
          ? '11'.repeat(32)
          : {
              version: 0x20000000,
              previousblockhash: '11'.repeat(32),
              transactions: [],
              coinbasevalue: 5_000_000_000,
              longpollid: `${'11'.repeat(32)}${n}`,
              target: 'ff'.repeat(32),
              mintime: 1,
              curtime: 1_700_000_000 + n,
              bits: '207fffff',
              height: 100,
            };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ result, error: null, id }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  cleanups.push(() => server.closeAllConnections());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { url, calls };
}

describe('TemplateSource', () => {
  it('asks a daemon for at most 4 templates a second, however fast it answers and however often a block is announced', async () => {
    const daemon = await restlessDaemon();
    const daemons = new DaemonPool([{ url: daemon.url, user: 'u', password: 'p' }]);
    cleanups.push(() => daemons.close());
    const source = new TemplateSource({ daemons, pollIntervalMs: 50, refreshIntervalMs: 100 });
    cleanups.push(() => source.close());
    await source.start();
    source.setActive(true);
    const from = performance.now();
    const announcing = setInterval(() => source.notify('blocknotify'), 5);
    cleanups.push(() => clearInterval(announcing));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const seconds = (performance.now() - from) / 1000;
    // The start fetch, then at most 4 a second: long polls, announcements, refreshes together.
    expect(daemon.calls.getblocktemplate).toBeLessThanOrEqual(1 + Math.ceil(4 * seconds));
    expect(daemon.calls.getblocktemplate).toBeGreaterThanOrEqual(4);
  });
});
