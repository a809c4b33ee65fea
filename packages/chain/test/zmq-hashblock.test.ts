import { once } from 'node:events';
import { type HashblockEvent, HashblockListener } from '@hashwire/chain';
import { afterEach, describe, expect, it } from 'vitest';
import { XPublisher } from 'zeromq';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/**
 * A publisher speaking bitcoind's format. It is an XPUB so the test can wait for the listener's
 * subscription to arrive instead of publishing into the void (ZeroMQ's slow joiner).
 */
async function publisher(endpoint = 'tcp://127.0.0.1:*'): Promise<{ pub: XPublisher; endpoint: string }> {
  const pub = new XPublisher({ linger: 0 });
  await pub.bind(endpoint);
  closers.push(() => pub.close());
  return { pub, endpoint: pub.lastEndpoint as string };
}

async function subscribed(pub: XPublisher): Promise<void> {
  const [frame] = await pub.receive();
  expect(frame?.[0]).toBe(1);
  expect(frame?.subarray(1).toString()).toBe('hashblock');
}

function hashOf(n: number): Buffer {
  return Buffer.alloc(32, n);
}

async function publish(pub: XPublisher, n: number, sequence: number): Promise<void> {
  const seq = Buffer.alloc(4);
  seq.writeUInt32LE(sequence);
  await pub.send(['hashblock', hashOf(n), seq]);
}

function listener(endpoint: string): HashblockListener {
  const l = new HashblockListener({ endpoint, reconnectIntervalMs: 20, reconnectMaxIntervalMs: 100 });
  closers.push(() => l.close());
  return l;
}

function collect<T>(l: HashblockListener, event: 'block' | 'gap' | 'reset' | 'malformed'): T[] {
  const seen: T[] = [];
  l.on(event, (data: unknown) => seen.push(data as T));
  return seen;
}

describe('ZMQ hashblock listener', () => {
  it('emits block hashes with their sequence', async () => {
    const { pub, endpoint } = await publisher();
    const l = listener(endpoint);
    await subscribed(pub);
    const block = once(l, 'block');
    await publish(pub, 0xab, 7);
    const [event] = (await block) as [HashblockEvent];
    expect(event).toEqual({ hash: 'ab'.repeat(32), sequence: 7 });
    expect(l.expectedSequence).toBe(8);
  });

  it('detects a gap in the sequence', async () => {
    const { pub, endpoint } = await publisher();
    const l = listener(endpoint);
    const gaps = collect(l, 'gap');
    const blocks = collect<HashblockEvent>(l, 'block');
    await subscribed(pub);
    const fourth = new Promise<void>((resolve) => l.on('block', (b) => b.sequence === 4 && resolve()));
    for (const seq of [0, 1, 4]) await publish(pub, seq, seq);
    await fourth;
    expect(blocks.map((b) => b.sequence)).toEqual([0, 1, 4]);
    expect(gaps).toEqual([{ expected: 2, received: 4, missed: 2 }]);
  });

  it('treats a wrap of the 32-bit sequence as continuous and a step back as a daemon restart', async () => {
    const { pub, endpoint } = await publisher();
    const l = listener(endpoint);
    const gaps = collect(l, 'gap');
    const resets = collect(l, 'reset');
    await subscribed(pub);
    const done = new Promise<void>((resolve) => {
      let n = 0;
      l.on('block', () => ++n === 3 && resolve());
    });
    await publish(pub, 1, 0xffffffff);
    await publish(pub, 2, 0);
    await publish(pub, 3, 0);
    await done;
    expect(gaps).toEqual([]);
    expect(resets).toEqual([{ expected: 1, received: 0 }]);
  });

  it('reports malformed messages and ignores topics that only share the prefix', async () => {
    const { pub, endpoint } = await publisher();
    const l = listener(endpoint);
    const blocks = collect<HashblockEvent>(l, 'block');
    await subscribed(pub);
    const malformed = once(l, 'malformed');
    await pub.send(['hashblock2', hashOf(1), Buffer.alloc(4)]);
    await pub.send(['hashblock', hashOf(1)]);
    expect((await malformed)[0]).toMatch(/2 frames of 9\/32 bytes/);
    const block = once(l, 'block');
    await publish(pub, 5, 0);
    await block;
    expect(blocks.map((b) => b.hash)).toEqual(['05'.repeat(32)]);
  });

  it('reconnects when the publisher comes back on the same endpoint', async () => {
    const first = await publisher();
    const l = listener(first.endpoint);
    const resets = collect(l, 'reset');
    await subscribed(first.pub);
    const block = once(l, 'block');
    await publish(first.pub, 1, 10);
    await block;

    const disconnected = once(l, 'disconnect');
    first.pub.close();
    await disconnected;

    const second = await publisher(first.endpoint);
    await subscribed(second.pub);
    const again = once(l, 'block');
    await publish(second.pub, 2, 0);
    expect(await again).toEqual([{ hash: '02'.repeat(32), sequence: 0 }]);
    expect(resets).toEqual([{ expected: 11, received: 0 }]);
  });

  it('closes without hanging', async () => {
    const { endpoint } = await publisher();
    const l = new HashblockListener({ endpoint });
    await l.close();
    await l.close();
  });
});
