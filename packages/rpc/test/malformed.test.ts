import { RpcErrorCode } from '@hashwire/protocol';
import { createRpcClient, createRpcServer } from '@hashwire/rpc';
import { pack, unpack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import { Closer, randomRange, within } from './helpers.js';

interface Add {
  'math.add': { req: { a: number; b: number }; rep: { sum: number } };
}

const closer = new Closer();
afterEach(() => closer.closeAll());

const MAX_BYTES = 1024;

async function startServer() {
  return closer.add(
    await createRpcServer<Add>({
      portRange: randomRange(),
      maxMessageBytes: MAX_BYTES,
      handlers: { 'math.add': ({ a, b }) => ({ sum: a + b }) },
    }),
  );
}

/** Sends `messages` on a raw DEALER, then a valid request 99; returns every reply up to 99's. */
async function sendRaw(endpoint: string, messages: (Buffer | Buffer[])[]): Promise<unknown[][]> {
  const dealer = closer.add(new Dealer({ linger: 0 }));
  dealer.connect(endpoint);
  for (const message of messages) await dealer.send(message);
  await dealer.send(pack([1, 'req', 99, 'math.add', { a: 1, b: 1 }]));
  const replies: unknown[][] = [];
  // One connection delivers in order: everything answered before 99 has been answered.
  for (;;) {
    const [frame] = await within(dealer.receive(), 5000, 'reply to request 99');
    const reply = unpack(frame as Buffer) as unknown[];
    if (reply[2] === 99) {
      expect(reply).toEqual([1, 'rep', 99, 'math.add', { sum: 2 }]);
      return replies;
    }
    replies.push(reply);
  }
}

function errorOf(replies: unknown[][], id: number): { code: number; message: string } | undefined {
  const reply = replies.find((r) => r[2] === id);
  if (!reply) return undefined;
  expect(reply[0]).toBe(1);
  expect(reply[1]).toBe('err');
  return reply[4] as { code: number; message: string };
}

describe('bad input on the ROUTER', () => {
  it('answers what carries a recoverable id, drops the rest, counts each, and keeps serving', async () => {
    const server = await startServer();
    const valid = pack([1, 'req', 9, 'math.add', { a: 1, b: 2 }]);
    const replies = await sendRaw(server.endpoint, [
      Buffer.from('hello, not msgpack at all'), // undecodable, no id: dropped
      pack([2, 'req', 5, 'math.add', { a: 1, b: 2 }]), // wrong version
      pack([1, 'zzz', 6, 'math.add', { a: 1, b: 2 }]), // unknown kind
      pack([1, 'req', 7, 'math.nope', {}]), // unknown method
      pack([1, 'req', 8, 'math.add', { pad: 'x'.repeat(MAX_BYTES * 2) }]), // over maxMessageBytes
      valid.subarray(0, valid.length - 3), // truncated msgpack, id readable in its header
      [Buffer.from('two'), Buffer.from('frames')], // wrong frame count: dropped
      pack({ not: 'an array' }), // no envelope: dropped
      pack([1, 'req', 'eleven', 'math.add', {}]), // id not a number: dropped
      pack([1, 'rep', 12, 'math.add', {}]), // a reply sent to a server: dropped, never answered
      Buffer.alloc(0), // empty frame: dropped
    ]);

    expect(errorOf(replies, 5)).toMatchObject({
      code: RpcErrorCode.BadEnvelope,
      message: expect.stringMatching(/version/),
    });
    expect(errorOf(replies, 6)).toMatchObject({
      code: RpcErrorCode.BadEnvelope,
      message: expect.stringMatching(/kind/),
    });
    expect(errorOf(replies, 7)).toEqual({
      code: RpcErrorCode.UnknownMethod,
      message: "unknown method 'math.nope'",
    });
    expect(errorOf(replies, 8)).toMatchObject({ code: RpcErrorCode.TooLarge });
    expect(errorOf(replies, 9)).toMatchObject({
      code: RpcErrorCode.BadEnvelope,
      message: expect.stringMatching(/msgpack/),
    });
    expect(replies.map((r) => r[2]).sort()).toEqual([5, 6, 7, 8, 9]);

    const stats = server.stats();
    expect(stats.malformed).toEqual({ frames: 1, tooLarge: 1, decode: 3, envelope: 2, version: 1, kind: 2 });
    expect(stats.droppedMalformed).toBe(6);
    expect(stats.errors).toEqual({
      [RpcErrorCode.BadEnvelope]: 3,
      [RpcErrorCode.UnknownMethod]: 1,
      [RpcErrorCode.TooLarge]: 1,
    });

    const client = closer.add(createRpcClient<Add>(server.endpoint));
    await expect(client.request('math.add', { a: 20, b: 22 })).resolves.toEqual({ sum: 42 });
  });

  it('serves a well-behaved client while another floods it with garbage', async () => {
    const server = await startServer();
    const client = closer.add(createRpcClient<Add>(server.endpoint));
    const flood = Array.from({ length: 500 }, (_, i) =>
      i % 2 ? Buffer.from([0xc1, i & 0xff, 0xff]) : pack([7, 'req', i + 1000, 'math.add', { a: 1, b: 1 }]),
    );
    const [replies, sums] = await Promise.all([
      sendRaw(server.endpoint, flood),
      Promise.all(Array.from({ length: 50 }, (_, i) => client.request('math.add', { a: i, b: i }))),
    ]);
    expect(sums.map((s) => s.sum)).toEqual(Array.from({ length: 50 }, (_, i) => 2 * i));
    expect(replies).toHaveLength(250);
    expect(
      replies.every((r) => r[1] === 'err' && (r[4] as { code: number }).code === RpcErrorCode.BadEnvelope),
    ).toBe(true);
    expect(server.stats().malformed).toMatchObject({ decode: 250, version: 250 });
  });
});
