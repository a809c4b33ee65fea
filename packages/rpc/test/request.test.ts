import { RpcErrorCode } from '@hashwire/protocol';
import { RpcError, type RpcLogger, createRpcClient, createRpcServer } from '@hashwire/rpc';
import { afterEach, describe, expect, it } from 'vitest';
import { Closer, randomRange } from './helpers.js';

interface TestMethods {
  'math.add': { req: { a: number; b: number }; rep: { sum: number } };
  'echo.bytes': { req: { data: Uint8Array }; rep: { data: Uint8Array; length: number } };
  'fail.coded': { req: { code: number }; rep: never };
  'fail.crash': { req: Record<string, never>; rep: never };
  'slow.echo': { req: { text: string; release: number }; rep: { text: string } };
  'not.implemented': { req: null; rep: null };
}

const closer = new Closer();
afterEach(() => closer.closeAll());

/** Holds `slow.echo` handlers until the test releases their key (before or after they arrive). */
function gate() {
  const gates = new Map<number, { promise: Promise<void>; open: () => void }>();
  const get = (key: number) => {
    let entry = gates.get(key);
    if (!entry) {
      let open = () => {};
      const promise = new Promise<void>((resolve) => {
        open = resolve;
      });
      entry = { promise, open };
      gates.set(key, entry);
    }
    return entry;
  };
  return { wait: (key: number) => get(key).promise, release: (key: number) => get(key).open() };
}

async function start(logger?: RpcLogger) {
  const slow = gate();
  const server = closer.add(
    await createRpcServer<TestMethods>({
      portRange: randomRange(),
      ...(logger ? { logger } : {}),
      handlers: {
        'math.add': ({ a, b }) => ({ sum: a + b }),
        'echo.bytes': async ({ data }) => ({ data, length: data.length }),
        'fail.coded': ({ code }) => {
          throw new RpcError(code as RpcErrorCode, `failed with ${code}`);
        },
        'fail.crash': () => {
          throw new Error('secret internal detail /etc/passwd');
        },
        'slow.echo': async ({ text, release }) => {
          await slow.wait(release);
          return { text };
        },
      },
    }),
  );
  const client = closer.add(createRpcClient<TestMethods>(server.endpoint));
  return { server, client, slow };
}

describe('request and reply', () => {
  it('answers typed requests, sync and async handlers alike', async () => {
    const { server, client } = await start();
    expect(server.endpoint).toBe(`tcp://127.0.0.1:${server.port}`);
    await expect(client.request('math.add', { a: 2, b: 40 })).resolves.toEqual({ sum: 42 });
    const data = new Uint8Array([0, 1, 2, 255]);
    const echoed = await client.request('echo.bytes', { data });
    expect(Buffer.from(echoed.data)).toEqual(Buffer.from(data));
    expect(echoed.length).toBe(4);
    const many = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.request('math.add', { a: i, b: 1 })),
    );
    expect(many.map((r) => r.sum)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(server.stats()).toMatchObject({ requests: 202, replies: 202 });
    expect(client.stats()).toMatchObject({ requests: 202, replies: 202, timeouts: 0, lateReplies: 0 });
  });

  it('passes the code of an RpcError thrown by a handler to the caller', async () => {
    const { server, client } = await start();
    const err = await client.request('fail.coded', { code: RpcErrorCode.Fenced }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toMatchObject({ code: RpcErrorCode.Fenced, message: 'failed with 8' });
    expect(server.stats().errors[RpcErrorCode.Fenced]).toBe(1);
    expect(client.stats().errors[RpcErrorCode.Fenced]).toBe(1);
  });

  it('turns any other throw into Internal with a generic message, and logs the real error', async () => {
    const logged: { obj: object; msg: string | undefined }[] = [];
    const logger: RpcLogger = {
      debug() {},
      warn() {},
      error: (obj, msg) => logged.push({ obj, msg }),
    };
    const { server, client } = await start(logger);
    const err = await client.request('fail.crash', {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: RpcErrorCode.Internal, message: 'internal error' });
    expect(String((err as Error).message)).not.toContain('passwd');
    expect(logged).toHaveLength(1);
    expect(logged[0]?.obj).toMatchObject({ method: 'fail.crash', err: expect.any(Error) });
    expect(server.stats().errors[RpcErrorCode.Internal]).toBe(1);
  });

  it('answers a method without a handler with UnknownMethod', async () => {
    const { server, client } = await start();
    await expect(client.request('not.implemented', null)).rejects.toMatchObject({
      code: RpcErrorCode.UnknownMethod,
      message: "unknown method 'not.implemented'",
    });
    expect(server.stats().errors[RpcErrorCode.UnknownMethod]).toBe(1);
  });

  it('rejects with Timeout at the deadline, then drops and counts the late reply', async () => {
    const { client, slow } = await start();
    const err = await client
      .request('slow.echo', { text: 'late', release: 1 }, { timeoutMs: 50 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toMatchObject({ code: RpcErrorCode.Timeout });
    expect(client.stats().timeouts).toBe(1);
    // Release the late reply, then a second request: replies come back in order on one
    // connection, so once the second is answered the late one has been handled.
    slow.release(1);
    const next = client.request('slow.echo', { text: 'on time', release: 2 });
    slow.release(2);
    await expect(next).resolves.toEqual({ text: 'on time' });
    expect(client.stats()).toMatchObject({ lateReplies: 1, timeouts: 1, replies: 1 });
  });

  it('lets one call override the default deadline', async () => {
    const { server } = await start();
    const client = closer.add(createRpcClient<TestMethods>(server.endpoint, { timeoutMs: 30 }));
    const held = client.request('slow.echo', { text: 'x', release: 99 }, { timeoutMs: 60_000 });
    const short = client.request('slow.echo', { text: 'y', release: 98 });
    await expect(short).rejects.toMatchObject({ code: RpcErrorCode.Timeout });
    // The long deadline is still running: closing the client is what ends it.
    await client.close();
    await expect(held).rejects.toMatchObject({ code: RpcErrorCode.Unavailable });
  });

  it('refuses a body msgpack cannot carry with BadRequest, without sending it', async () => {
    const { client } = await start();
    const body = { a: 1, b: 2n ** 70n } as unknown as { a: number; b: number };
    await expect(client.request('math.add', body)).rejects.toMatchObject({ code: RpcErrorCode.BadRequest });
  });

  it('validates options with messages naming the field', async () => {
    await expect(createRpcServer({ handlers: {}, portRange: [2, 1] })).rejects.toThrow(/portRange/);
    await expect(
      createRpcServer<{ $hb: { req: null; rep: null } }>({ handlers: { $hb: () => null } }),
    ).rejects.toThrow(/reserved/);
    expect(() => createRpcClient('localhost:1')).toThrow(/endpoint must be a ZeroMQ endpoint/);
    expect(() => createRpcClient('tcp://127.0.0.1:1', { timeoutMs: 0 })).toThrow(/timeoutMs/);
  });

  it('idle() waits for handlers still running, so a closing server answers what it was asked', async () => {
    const { server, client, slow } = await start();
    expect(await server.idle(1000)).toBe(0);
    const answered: string[] = [];
    const calls = [1, 2].map((release) =>
      client.request('slow.echo', { text: `t${release}`, release }).then((r) => answered.push(r.text)),
    );
    // One connection is served in order: once a call sent after them is answered, both slow
    // handlers are running.
    await client.request('math.add', { a: 1, b: 1 });
    // Still running when the wait runs out: says how many.
    expect(await server.idle(50)).toBe(2);
    const idle = server.idle(10_000);
    slow.release(2);
    slow.release(1);
    expect(await idle).toBe(0);
    await Promise.all(calls);
    expect(answered.sort()).toEqual(['t1', 't2']);
    await server.close();
  });
});
