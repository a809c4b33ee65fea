import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { headerFieldHex } from '@hashwire/chain';
import type { Share } from '@hashwire/protocol';
import type { StratumServer } from '@hashwire/stratum';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADDRESS,
  type Harness,
  RawClient,
  type StratumMessage,
  type TestJobSource,
  USER,
  createHarness,
  job,
} from './server-helpers.js';

let h: Harness;
let server: StratumServer;
let jobs: TestJobSource;
let spoolDir: string;

beforeAll(async () => {
  h = await createHarness();
  ({ server, jobs } = await h.start({ limits: { maxConnectionsPerIp: 0 } }));
  spoolDir = h.dirs[0]!;
  jobs.push(job('a1'));
});
afterAll(() => h.close());

let en2 = 0;
/** A share on the fixture job that every difficulty below 1e-9 accepts. */
function submitParams(jobId: string, extra: unknown[] = []): unknown[] {
  en2++;
  return [
    USER,
    jobId,
    en2.toString(16).padStart(16, '0'),
    headerFieldHex(1_670_462_000),
    '00000000',
    ...extra,
  ];
}

describe('stratum v1 handshake and methods', () => {
  it('subscribes, authorizes, sends difficulty then the prepared notify line, and accepts a share after writing it', async () => {
    const c = await RawClient.connect(server.port);
    const subscribe = await c.request('mining.subscribe', ['cgminer/4.12']);
    const [subs, extranonce1, extranonce2Size] = subscribe.result as [[string, string][], string, number];
    expect(subscribe.error).toBeNull();
    expect(subs.map(([m]) => m)).toEqual(['mining.set_difficulty', 'mining.notify']);
    expect(subs[0]![1]).toMatch(/^[0-9a-f]{16}$/);
    expect(subs[1]![1]).toBe(subs[0]![1]);
    expect(extranonce1).toMatch(/^[0-9a-f]{8}$/);
    expect(extranonce2Size).toBe(8);

    const from = c.messages.length;
    const authorize = await c.request('mining.authorize', [USER, 'x']);
    expect(authorize).toMatchObject({ result: true, error: null });
    const notify = await c.nextNotification('mining.notify', from);
    const order = c.messages.slice(from).map((m) => m.method ?? 'reply');
    expect(order.indexOf('mining.set_difficulty')).toBeLessThan(order.indexOf('mining.notify'));
    // The wire bytes are the job's pre-serialized line (clean, as a first job).
    expect(`${JSON.stringify(notify)}\n`).toBe(server.book.current!.notifyLineClean.toString());
    expect(notify.params![0]).toBe('a1');

    const shares: Share[] = [];
    server.on('share', (s) => shares.push(s));
    const before = server.spool!.stats().appended;
    const reply = await c.request('mining.submit', submitParams('a1'));
    expect(reply).toMatchObject({ result: true, error: null });
    // Acknowledged only after the spool write.
    expect(server.spool!.stats().appended).toBe(before + 1);
    const share = shares.find((s) => s.extranonce1 === extranonce1)!;
    expect(share).toMatchObject({
      sessionId: subs[0]![1],
      account: ADDRESS,
      worker: 'rig1',
      jobId: 'a1',
      extranonce1,
      result: 'accepted',
      ip: '127.0.0.1',
      version: '20000000',
    });
    server.spool!.seal();
    const onDisk = readdirSync(spoolDir)
      .filter((f) => f.startsWith('batch-'))
      .flatMap((f) => readFileSync(join(spoolDir, f), 'utf8').trim().split('\n'))
      .map((l) => JSON.parse(l) as Share);
    expect(onDisk.some((s) => s.shareId === share.shareId)).toBe(true);
    c.close();
  });

  it('answers configure (version mask AND, minimum difficulty), suggest_difficulty, extranonce.subscribe, and refuses unknown methods', async () => {
    const c = await RawClient.connect(server.port);
    const configure = await c.request('mining.configure', [
      ['version-rolling', 'minimum-difficulty', 'subscribe-extranonce', 'future-thing'],
      {
        'version-rolling.mask': '00fff000',
        'version-rolling.min-bit-count': 2,
        'minimum-difficulty.value': 0.5,
      },
    ]);
    expect(configure.result).toEqual({
      'version-rolling': true,
      'version-rolling.mask': (0x1fffe000 & 0x00fff000).toString(16).padStart(8, '0'),
      'minimum-difficulty': true,
      'subscribe-extranonce': true,
      'future-thing': false,
    });
    expect(await c.request('mining.extranonce.subscribe')).toMatchObject({ result: true, error: null });
    expect(await c.request('mining.suggest_difficulty', [2])).toMatchObject({ result: true, error: null });
    expect(await c.request('mining.get_transactions', ['a1'])).toMatchObject({
      result: null,
      error: [20, 'unknown method', null],
    });
    const { notify, extranonce1 } = await c.handshake();
    const diff = c.messages.find((m) => m.method === 'mining.set_difficulty')!;
    // suggest (2) is above the configured minimum (0.5): it wins and becomes the floor.
    expect(diff.params).toEqual([2]);
    expect(notify.params![8]).toBe(true);
    const state = server.sessions().find((s) => s.extranonce1 === extranonce1)!;
    expect(state).toMatchObject({ versionMask: 0x00ffe000, minDifficulty: 2, extranonceSubscribed: true });
    c.close();
  });

  it('rolls version bits only inside the negotiated mask', async () => {
    const c = await RawClient.connect(server.port);
    await c.request('mining.configure', [['version-rolling'], { 'version-rolling.mask': 'ffffffff' }]);
    await c.handshake();
    expect(await c.request('mining.submit', submitParams('a1', ['1fffe000']))).toMatchObject({
      result: true,
    });
    const outside = await c.request('mining.submit', submitParams('a1', ['00000001']));
    expect(outside.error).toEqual([20, 'version bits outside the negotiated mask', null]);
    c.close();

    const plain = await RawClient.connect(server.port);
    await plain.handshake();
    const noMask = await plain.request('mining.submit', submitParams('a1', ['00002000']));
    expect(noMask.error?.[0]).toBe(20);
    plain.close();
  });

  it('sends mining.set_version_mask when the pool mask changes', async () => {
    const c = await RawClient.connect(server.port);
    await c.request('mining.configure', [['version-rolling'], { 'version-rolling.mask': '1fffe000' }]);
    await c.handshake();
    const next = c.nextNotification('mining.set_version_mask');
    server.setVersionMask(0x00ffe000);
    expect((await next).params).toEqual(['00ffe000']);
    expect(await c.request('mining.submit', submitParams('a1', ['1f000000']))).toMatchObject({
      error: [20, 'version bits outside the negotiated mask', null],
    });
    server.setVersionMask(0x1fffe000);
    c.close();
  });

  it('answers each request at every split position of the whole handshake, and many requests in one packet', async () => {
    const requests: [string, unknown[]][] = [
      ['mining.configure', [['version-rolling'], { 'version-rolling.mask': '1fffe000' }]],
      ['mining.subscribe', ['split/1']],
      ['mining.authorize', [USER, 'x']],
      ['mining.extranonce.subscribe', []],
      ['mining.submit', submitParams('a1')],
    ];
    const bytes = Buffer.from(
      requests.map(([method, params], i) => `${JSON.stringify({ id: i + 1, method, params })}\r\n`).join(''),
    );
    const check = (c: RawClient) =>
      Promise.all(
        requests.map((_, i) =>
          c
            .waitFor((m) => m.id === i + 1)
            .then((m: StratumMessage) => {
              expect(m.error, `request ${i + 1}`).toBeNull();
            }),
        ),
      );
    // Every cut position: two writes, the second after the first left the socket.
    for (let cut = 1; cut < bytes.length; cut += 1) {
      const c = await RawClient.connect(server.port);
      c.socket.setNoDelay(true);
      const replies = check(c);
      c.write(bytes.subarray(0, cut));
      c.write(bytes.subarray(cut));
      await replies;
      // The share was the same each time: from the second connection on it is a new
      // extranonce1, so it is never a duplicate.
      c.close();
    }
    // One byte per write.
    const slow = await RawClient.connect(server.port);
    slow.socket.setNoDelay(true);
    const slowReplies = check(slow);
    for (const byte of bytes) slow.write(Buffer.of(byte));
    await slowReplies;
    slow.close();
    // Everything in one packet.
    const fast = await RawClient.connect(server.port);
    const fastReplies = check(fast);
    fast.write(bytes);
    await fastReplies;
    expect(fast.junk).toEqual([]);
    fast.close();
  });

  it('serializes each job once: every session gets the same bytes, clean on a new prevhash', async () => {
    const a = await RawClient.connect(server.port);
    const b = await RawClient.connect(server.port);
    await a.handshake();
    await b.handshake();
    const na = a.nextNotification('mining.notify');
    const nb = b.nextNotification('mining.notify');
    jobs.push(job('a2', { cleanJobs: false }));
    const [ma, mb] = await Promise.all([na, nb]);
    expect(JSON.stringify(ma)).toBe(JSON.stringify(mb));
    expect(`${JSON.stringify(ma)}\n`).toBe(server.book.get('a2')!.notifyLine.toString());
    expect(ma.params![8]).toBe(false);
    const tip = a.nextNotification('mining.notify');
    jobs.push(job('b1', { cleanJobs: false, template: { previousblockhash: `${'00'.repeat(31)}11` } }));
    expect((await tip).params![8]).toBe(true);
    // Shares on the job of the old prevhash are stale now.
    expect(await a.request('mining.submit', submitParams('a2'))).toMatchObject({
      error: [21, 'stale job', null],
    });
    a.close();
    b.close();
  });

  it('classifies duplicate and unknown-job shares and answers submit before subscribe/authorize', async () => {
    const c = await RawClient.connect(server.port);
    expect(await c.request('mining.submit', submitParams('a1'))).toMatchObject({
      error: [25, 'not subscribed', null],
    });
    await c.request('mining.subscribe', []);
    expect(await c.request('mining.submit', submitParams('a1'))).toMatchObject({
      error: [24, 'unauthorized worker', null],
    });
    await c.request('mining.authorize', [USER, 'x']);
    const notify = await c.nextNotification('mining.notify', 0);
    const params = submitParams(notify.params![0] as string);
    expect(await c.request('mining.submit', params)).toMatchObject({ result: true });
    expect(await c.request('mining.submit', params)).toMatchObject({ error: [22, 'duplicate share', null] });
    expect(await c.request('mining.submit', submitParams('zz'))).toMatchObject({
      error: [21, 'job not found', null],
    });
    expect(await c.request('mining.submit', [`${ADDRESS}.other`, ...params.slice(1)])).toMatchObject({
      error: [24, 'unauthorized worker', null],
    });
    c.close();
  });
});
