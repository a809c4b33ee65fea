import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import {
  DaemonClient,
  DaemonError,
  DaemonPool,
  DaemonUnreachableError,
  RpcCode,
  cookieFilePath,
} from '@hashwire/chain';
import { afterEach, describe, expect, it } from 'vitest';

interface RpcRequest {
  method: string;
  params: unknown[];
  id: unknown;
  authorization: string | undefined;
  req: http.IncomingMessage;
  res: http.ServerResponse;
}

type Handler = (call: RpcRequest) => void;

interface FakeDaemon {
  url: string;
  port: number;
  calls: RpcRequest[];
  connections: number;
  handler: Handler;
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function reply(call: RpcRequest, result: unknown, status = 200): void {
  call.res.writeHead(status, { 'content-type': 'application/json' });
  call.res.end(JSON.stringify({ result, error: null, id: call.id }));
}

function replyError(call: RpcRequest, code: number, message: string): void {
  // bitcoind answers JSON-RPC errors with HTTP 500 (404 for an unknown method) and a JSON body.
  call.res.writeHead(code === RpcCode.MethodNotFound ? 404 : 500, { 'content-type': 'application/json' });
  call.res.end(JSON.stringify({ result: null, error: { code, message }, id: call.id }));
}

/** A JSON-RPC server speaking like bitcoind; `handler` decides each answer. */
async function fakeDaemon(handler: Handler, expectedAuth?: () => string): Promise<FakeDaemon> {
  const fake: FakeDaemon = { url: '', port: 0, calls: [], connections: 0, handler, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (expectedAuth && req.headers.authorization !== expectedAuth()) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="jsonrpc"' });
        res.end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const call: RpcRequest = {
        method: body.method,
        params: body.params,
        id: body.id,
        authorization: req.headers.authorization,
        req,
        res,
      };
      fake.calls.push(call);
      fake.handler(call);
    });
  });
  server.on('connection', () => {
    fake.connections += 1;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}/`;
  fake.close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  cleanups.push(() => fake.close());
  return fake;
}

function client(options: ConstructorParameters<typeof DaemonClient>[0]): DaemonClient {
  const c = new DaemonClient(options);
  cleanups.push(() => c.close());
  return c;
}

function basic(credentials: string): string {
  return `Basic ${Buffer.from(credentials).toString('base64')}`;
}

/** A port nobody listens on: bind, read it back, close. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('DaemonClient', () => {
  it('calls with user/password and returns the result, over one kept-alive connection', async () => {
    const fake = await fakeDaemon((call) => reply(call, { method: call.method, params: call.params }));
    const c = client({ url: fake.url, user: 'pool', password: 'hunter2' });
    expect(await c.call('getblockhash', [7])).toEqual({ method: 'getblockhash', params: [7] });
    expect(await c.call('getblockcount')).toEqual({ method: 'getblockcount', params: [] });
    expect(fake.calls[0]?.authorization).toBe(basic('pool:hunter2'));
    expect(fake.connections).toBe(1);
  });

  it('stays usable after close(), on a new connection', async () => {
    const fake = await fakeDaemon((call) => reply(call, 1));
    const c = client({ url: fake.url, user: 'u', password: 'p' });
    await c.call('getblockcount');
    c.close();
    expect(await c.call('getblockcount')).toBe(1);
    expect(fake.connections).toBe(2);
  });

  it('takes credentials out of the url', async () => {
    const fake = await fakeDaemon((call) => reply(call, 1));
    const c = client({ url: `http://pool:s3cret@127.0.0.1:${fake.port}/` });
    await c.call('getblockcount');
    expect(fake.calls[0]?.authorization).toBe(basic('pool:s3cret'));
    expect(c.url).toBe(`http://127.0.0.1:${fake.port}/`);
    expect(inspect(c, { depth: 5, showHidden: true })).not.toContain('s3cret');
  });

  it('throws DaemonError with the daemon code and message', async () => {
    const fake = await fakeDaemon((call) =>
      replyError(call, RpcCode.InvalidParameter, 'Block height out of range'),
    );
    const c = client({ url: fake.url, user: 'u', password: 'p' });
    const err = await c.call('getblockhash', [999]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonError);
    expect(err).toMatchObject({ code: -8, message: 'Block height out of range', method: 'getblockhash' });
  });

  it('surfaces submitblock rejections, which the daemon returns as a result string', async () => {
    const answers: (string | null)[] = ['bad-txnmrklroot', null, 'duplicate'];
    const fake = await fakeDaemon((call) => reply(call, answers.shift()));
    const c = client({ url: fake.url, user: 'u', password: 'p' });
    expect(await c.submitBlock('00')).toEqual({ accepted: false, reason: 'bad-txnmrklroot' });
    expect(await c.submitBlock('00')).toEqual({ accepted: true });
    expect(await c.submitBlock('00')).toEqual({ accepted: true, reason: 'duplicate' });
    expect(fake.calls[0]?.params).toEqual(['00']);
  });

  it('reads the cookie file and reads it again when the restarted daemon wrote a new one', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'hw-cookie-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const cookieFile = cookieFilePath(dir, 'regtest');
    expect(cookieFile).toBe(path.join(dir, 'regtest', '.cookie'));
    await mkdir(path.dirname(cookieFile));
    let cookie = '__cookie__:aaaa';
    await writeFile(cookieFile, cookie);
    const fake = await fakeDaemon(
      (call) => reply(call, 'ok'),
      () => basic(cookie),
    );
    const c = client({ url: fake.url, cookieFile });
    expect(await c.call('getblockcount')).toBe('ok');

    cookie = '__cookie__:bbbb';
    await writeFile(cookieFile, cookie);
    expect(await c.call('getblockcount')).toBe('ok');
    expect(fake.calls.at(-1)?.authorization).toBe(basic('__cookie__:bbbb'));
  });

  it('reports a missing cookie file as an auth failure naming the file', async () => {
    const fake = await fakeDaemon((call) => reply(call, 'ok'));
    const c = client({ url: fake.url, cookieFile: '/nonexistent/regtest/.cookie' });
    const err = await c.call('getblockcount').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonUnreachableError);
    expect(err).toMatchObject({ kind: 'auth' });
    expect((err as Error).message).toContain('/nonexistent/regtest/.cookie');
  });

  it('never shows the password in errors for refused auth or an unreachable daemon', async () => {
    const password = 'pw-that-must-not-leak';
    const fake = await fakeDaemon(
      (call) => reply(call, 'ok'),
      () => basic('pool:right'),
    );
    const refused = await client({ url: fake.url, user: 'pool', password })
      .call('getblockcount')
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DaemonUnreachableError);
    expect(refused).toMatchObject({ kind: 'auth', httpStatus: 401 });

    const port = await closedPort();
    const down = await client({ url: `http://pool:${password}@127.0.0.1:${port}/`, timeoutMs: 2_000 })
      .call('getblockcount')
      .catch((e: unknown) => e);
    expect(down).toBeInstanceOf(DaemonUnreachableError);
    expect(down).toMatchObject({ kind: 'connect', errno: 'ECONNREFUSED' });
    expect((down as Error).message).toContain(`http://127.0.0.1:${port}/`);

    for (const err of [refused, down]) {
      const views = [
        String(err),
        (err as Error).stack ?? '',
        JSON.stringify(err),
        inspect(err, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
      ];
      for (const view of views) {
        expect(view).not.toContain(password);
        expect(view).not.toContain(Buffer.from(`pool:${password}`).toString('base64'));
      }
    }
  });

  it('times out a call that gets no answer', async () => {
    const fake = await fakeDaemon(() => {});
    const c = client({ url: fake.url, user: 'u', password: 'p', timeoutMs: 150 });
    const started = Date.now();
    const err = await c.call('getblockcount').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonUnreachableError);
    expect(err).toMatchObject({ kind: 'timeout' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports a full work queue (HTTP 503 text) as an http failure', async () => {
    const fake = await fakeDaemon((call) => {
      call.res.writeHead(503);
      call.res.end('Work queue depth exceeded');
    });
    const err = await client({ url: fake.url, user: 'u', password: 'p' })
      .call('getblockcount')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'http', httpStatus: 503 });
    expect((err as Error).message).toContain('Work queue depth exceeded');
  });

  it('asks for mweb+segwit templates and long-polls with a cancellable request', async () => {
    const pending: RpcRequest[] = [];
    const fake = await fakeDaemon((call) => {
      const request = call.params[0] as { longpollid?: string };
      if (call.method === 'getblocktemplate' && request.longpollid) pending.push(call);
      else reply(call, { height: 1, params: call.params });
    });
    const c = client({ url: fake.url, user: 'u', password: 'p', maxSockets: 1 });
    const template = await c.getBlockTemplate();
    expect(template).toMatchObject({ params: [{ rules: ['mweb', 'segwit'] }] });

    const controller = new AbortController();
    const longpoll = c.getBlockTemplate({ longpollId: 'abc123', signal: controller.signal });
    const rejected = longpoll.catch((e: unknown) => e);
    await expect.poll(() => pending.length).toBe(1);
    expect(pending[0]?.params).toEqual([{ rules: ['mweb', 'segwit'], longpollid: 'abc123' }]);

    // The long poll has its own socket: ordinary calls still go through with maxSockets 1.
    expect(await c.call('getblockcount')).toMatchObject({ height: 1 });

    const closed = once(pending[0]!.req.socket, 'close');
    controller.abort();
    expect(await rejected).toMatchObject({ name: 'AbortError' });
    await closed;
  });

  it('returns the template when the long poll is answered', async () => {
    const pending: RpcRequest[] = [];
    const fake = await fakeDaemon((call) => pending.push(call));
    const c = client({ url: fake.url, user: 'u', password: 'p' });
    const longpoll = c.getBlockTemplate({ longpollId: 'x' });
    await expect.poll(() => pending.length).toBe(1);
    reply(pending[0]!, { height: 433, longpollid: 'y' });
    expect(await longpoll).toEqual({ height: 433, longpollid: 'y' });
  });
});

describe('DaemonPool', () => {
  it('calls the first healthy daemon and marks a failing one down with backoff', async () => {
    let aHealthy = false;
    const a = await fakeDaemon((call) => {
      if (aHealthy) return reply(call, 'a');
      call.res.writeHead(503);
      call.res.end('Work queue depth exceeded');
    });
    const b = await fakeDaemon((call) => reply(call, 'b'));
    const pool = new DaemonPool(
      [
        { url: a.url, user: 'u', password: 'p', name: 'a' },
        { url: b.url, user: 'u', password: 'p', name: 'b' },
      ],
      { backoffInitialMs: 60_000 },
    );
    cleanups.push(() => pool.close());
    const downs: string[] = [];
    pool.on('down', ({ daemon }) => downs.push(daemon));

    expect(await pool.call('getblockcount')).toBe('b');
    expect(downs).toEqual(['a']);
    expect(pool.health().map((h) => [h.daemon, h.up])).toEqual([
      ['a', false],
      ['b', true],
    ]);

    // a is in backoff: the next call goes straight to b.
    aHealthy = true;
    expect(await pool.call('getblockcount')).toBe('b');
    expect(a.calls).toHaveLength(1);
  });

  it('comes back to a recovered daemon once its backoff is over', async () => {
    let aHealthy = false;
    const a = await fakeDaemon((call) => {
      if (aHealthy) return reply(call, 'a');
      replyError(call, RpcCode.InWarmup, 'Loading block index...');
    });
    const b = await fakeDaemon((call) => reply(call, 'b'));
    const pool = new DaemonPool(
      [
        { url: a.url, user: 'u', password: 'p', name: 'a' },
        { url: b.url, user: 'u', password: 'p', name: 'b' },
      ],
      { backoffInitialMs: 0 },
    );
    cleanups.push(() => pool.close());
    const ups: string[] = [];
    pool.on('up', ({ daemon }) => ups.push(daemon));
    expect(await pool.call('getblockcount')).toBe('b');
    aHealthy = true;
    expect(await pool.call('getblockcount')).toBe('a');
    expect(ups).toEqual(['a']);
  });

  it('throws request errors at once without trying other daemons', async () => {
    const a = await fakeDaemon((call) => replyError(call, RpcCode.InvalidParameter, 'bad param'));
    const b = await fakeDaemon((call) => reply(call, 'b'));
    const pool = new DaemonPool([
      { url: a.url, user: 'u', password: 'p' },
      { url: b.url, user: 'u', password: 'p' },
    ]);
    cleanups.push(() => pool.close());
    await expect(pool.call('getblockhash', [-1])).rejects.toBeInstanceOf(DaemonError);
    expect(b.calls).toHaveLength(0);
  });

  it('throws the last failure when every daemon is down', async () => {
    const pool = new DaemonPool([
      { url: `http://127.0.0.1:${await closedPort()}/`, user: 'u', password: 'p' },
      { url: `http://127.0.0.1:${await closedPort()}/`, user: 'u', password: 'p' },
    ]);
    cleanups.push(() => pool.close());
    await expect(pool.call('getblockcount')).rejects.toBeInstanceOf(DaemonUnreachableError);
  });

  it('submits a block to every daemon in parallel', async () => {
    const answers = new Map<string, string | null>();
    const a = await fakeDaemon((call) => reply(call, answers.get('a')));
    const b = await fakeDaemon((call) => reply(call, answers.get('b')));
    const down = `http://127.0.0.1:${await closedPort()}/`;
    const pool = new DaemonPool([
      { url: a.url, user: 'u', password: 'p', name: 'a' },
      { url: b.url, user: 'u', password: 'p', name: 'b' },
      { url: down, user: 'u', password: 'p', name: 'c' },
    ]);
    cleanups.push(() => pool.close());

    answers.set('a', null).set('b', 'duplicate');
    const ok = await pool.submitBlock('beef');
    expect(ok.accepted).toBe(true);
    expect(ok.results.map((r) => [r.daemon, r.result?.accepted])).toEqual([
      ['a', true],
      ['b', true],
      ['c', undefined],
    ]);
    expect(ok.results[2]?.error).toBeInstanceOf(DaemonUnreachableError);
    expect(a.calls[0]?.params).toEqual(['beef']);
    expect(b.calls[0]?.params).toEqual(['beef']);

    answers.set('a', 'bad-txnmrklroot').set('b', 'bad-txnmrklroot');
    const rejected = await pool.submitBlock('beef');
    expect(rejected).toMatchObject({ accepted: false, reason: 'bad-txnmrklroot' });
  });

  it('counts an inconclusive answer as accepted once a daemon has the block in its active chain', async () => {
    // litecoind answers `inconclusive` when the same block reached it from a peer while it
    // checked ours: a race that cannot be produced on demand, hence the fake daemons.
    const chains = new Map<string, number>();
    // What getchaintips says of the block when it is off the active chain.
    const tipStatus = new Map<string, string>();
    const daemon = (name: string, submitted: () => unknown) =>
      fakeDaemon((call) => {
        if (call.method === 'submitblock') reply(call, submitted());
        else if (call.method === 'getchaintips')
          reply(
            call,
            chains.has(name) ? [{ hash: 'ab'.repeat(32), status: tipStatus.get(name) ?? 'valid-fork' }] : [],
          );
        else if (chains.has(name)) reply(call, { hash: call.params[0], confirmations: chains.get(name) });
        else replyError(call, -5, 'Block not found');
      });
    const a = await daemon('a', () => 'inconclusive');
    const b = await daemon('b', () => 'inconclusive');
    const pool = new DaemonPool(
      [
        { url: a.url, user: 'u', password: 'p', name: 'a' },
        { url: b.url, user: 'u', password: 'p', name: 'b' },
      ],
      { verifyMs: 300 },
    );
    cleanups.push(() => pool.close());
    const hash = 'ab'.repeat(32);

    // Neither has it: still refused, with the daemon's word.
    expect(await pool.submitBlock('beef', { hash })).toMatchObject({
      accepted: false,
      reason: 'inconclusive',
    });
    // One has it off its active chain, a sibling having won the race (valid-fork): orphaned,
    // not accepted, and settled at once.
    chains.set('a', -1);
    const asked = () => a.calls.filter((c) => c.method === 'getblockheader').length;
    let before = asked();
    expect(await pool.submitBlock('beef', { hash })).toMatchObject({
      accepted: false,
      orphaned: true,
      reason: expect.stringMatching(/^orphaned: a sibling block/),
    });
    expect(asked() - before).toBe(1);
    // Still connecting it (valid-headers) for longer than verifyMs: asked again meanwhile,
    // then not counted.
    tipStatus.set('a', 'valid-headers');
    before = asked();
    expect(await pool.submitBlock('beef', { hash })).toMatchObject({ accepted: false });
    expect(asked() - before).toBeGreaterThan(1);
    // Still connecting it when first asked (the copy a peer sent), in its active chain a moment
    // later: accepted.
    let asks = 0;
    const connecting = await fakeDaemon((call) => {
      if (call.method === 'submitblock') reply(call, 'inconclusive');
      else if (call.method === 'getchaintips') reply(call, [{ hash, status: 'valid-headers' }]);
      else reply(call, { hash: call.params[0], confirmations: ++asks < 3 ? -1 : 0 });
    });
    const c = new DaemonPool([{ url: connecting.url, user: 'u', password: 'p', name: 'c' }]);
    cleanups.push(
      () => c.close(),
      () => connecting.close(),
    );
    expect(await c.submitBlock('beef', { hash })).toMatchObject({ accepted: true, verified: true });
    expect(asks).toBe(3);
    // One has it in its active chain: accepted, and said to be verified.
    chains.set('b', 1);
    expect(await pool.submitBlock('beef', { hash })).toMatchObject({ accepted: true, verified: true });
    expect(b.calls.filter((c) => c.method === 'getblockheader').at(-1)?.params).toEqual([hash, true]);
    // Without the hash nothing is asked.
    const callsBefore = b.calls.length;
    expect(await pool.submitBlock('beef')).toMatchObject({ accepted: false, reason: 'inconclusive' });
    expect(b.calls.length).toBe(callsBefore + 1);
  });
});
