import { headerFieldHex } from '@hashwire/chain';
import type { Share } from '@hashwire/protocol';
import type {
  CloseReason,
  DisconnectEvent,
  ShareBatch,
  StratumLogger,
  StratumServer,
} from '@hashwire/stratum';
import { startSimMiners } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAIN, type Harness, RawClient, TestJobSource, USER, createHarness, job } from './server-helpers.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A PROXY v2 header: PROXY over IPv4 (with TLVs) or LOCAL. */
function v2(command: 'proxy' | 'local', source = '203.0.113.7', uniqueId?: string): Buffer {
  const parts: Buffer[] = [];
  if (command === 'proxy') {
    const block = Buffer.alloc(12);
    source.split('.').forEach((n, i) => block.writeUInt8(Number(n), i));
    [10, 0, 0, 2].forEach((n, i) => block.writeUInt8(n, 4 + i));
    block.writeUInt16BE(54321, 8);
    block.writeUInt16BE(3333, 10);
    parts.push(block);
  }
  if (uniqueId) {
    const value = Buffer.from(uniqueId);
    const tlv = Buffer.from([0x05, 0, 0]);
    tlv.writeUInt16BE(value.length, 1);
    parts.push(tlv, value);
  }
  const body = Buffer.concat(parts);
  const head = Buffer.from([command === 'proxy' ? 0x21 : 0x20, command === 'proxy' ? 0x11 : 0x00, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, head, body]);
}

function v1(source: string): Buffer {
  return Buffer.from(`PROXY TCP4 ${source} 10.0.0.2 40000 3333\r\n`);
}

let h: Harness;
let server: StratumServer;
const jobs = new TestJobSource();

beforeAll(async () => {
  h = await createHarness();
  jobs.push(job('p1'));
  ({ server } = await h.start({
    jobs,
    trustedProxies: ['127.0.0.1/32'],
    limits: { maxConnectionsPerIp: 2 },
  }));
});
afterAll(() => h.close());

function nextDisconnect(
  srv: StratumServer,
  match: (e: DisconnectEvent) => boolean,
): Promise<DisconnectEvent> {
  return new Promise((resolve) => {
    srv.on('disconnect', function on(e) {
      if (!match(e)) return;
      srv.off('disconnect', on);
      resolve(e);
    });
  });
}

let en2 = 0;
const share = (jobId = 'p1') => [
  USER,
  jobId,
  (++en2).toString(16).padStart(16, '0'),
  headerFieldHex(1_670_462_000),
  '00000000',
];

describe('PROXY protocol', () => {
  it('takes the real client address from a trusted proxy (v1) into the session and its shares', async () => {
    const c = await RawClient.connect(server.port);
    c.write(v1('198.51.100.20'));
    const { extranonce1 } = await c.handshake();
    const state = server.sessions().find((s) => s.extranonce1 === extranonce1)!;
    expect(state).toMatchObject({ ip: '198.51.100.20', port: 40000 });
    const shares: Share[] = [];
    server.on('share', (s) => shares.push(s));
    await c.request('mining.submit', share());
    expect(shares.find((s) => s.extranonce1 === extranonce1)?.ip).toBe('198.51.100.20');
    c.close();
  });

  it('uses the v2 unique-id TLV as connection id in the session state and in Redis, at every split of the header', async () => {
    const header = v2('proxy', '203.0.113.7', 'HAP-0A0B:1F40_0007');
    const subscribe = Buffer.from('{"id":1,"method":"mining.subscribe","params":["p"]}\n');
    const bytes = Buffer.concat([header, subscribe]);
    for (let cut = 1; cut < header.length + 2; cut++) {
      const c = await RawClient.connect(server.port);
      c.socket.setNoDelay(true);
      const reply = c.waitFor((m) => m.id === 1);
      c.write(bytes.subarray(0, cut));
      c.write(bytes.subarray(cut));
      const [, extranonce1] = (await reply).result as [unknown, string];
      const state = server.sessions().find((s) => s.extranonce1 === extranonce1)!;
      expect(state).toMatchObject({ connId: 'HAP-0A0B:1F40_0007', ip: '203.0.113.7' });
      if (cut === 1) {
        await c.request('mining.authorize', [USER, 'x']); // from here on the session is resumable
        const stored = await h.client.hget(h.keys.session(CHAIN, state.sessionId), 'connId');
        expect(stored).toBe('HAP-0A0B:1F40_0007');
      }
      const gone = nextDisconnect(server, (e) => e.sessionId === state.sessionId);
      c.close();
      await gone; // the per-address limit is 2
    }
  });

  it('accepts a v2 LOCAL header (HAProxy health check) and keeps the socket address', async () => {
    const check = await RawClient.connect(server.port);
    const gone = nextDisconnect(server, () => true);
    check.write(v2('local'));
    check.close();
    expect((await gone).reason).toBe<CloseReason>('client-closed');

    const c = await RawClient.connect(server.port);
    c.write(v2('local', undefined, 'health-1'));
    const { extranonce1 } = await c.handshake();
    expect(server.sessions().find((s) => s.extranonce1 === extranonce1)).toMatchObject({
      ip: '127.0.0.1',
      connId: 'health-1',
    });
    c.close();
  });

  it('applies the per-address limit to the address in the header', async () => {
    const first = await RawClient.connect(server.port);
    const second = await RawClient.connect(server.port);
    const third = await RawClient.connect(server.port);
    first.write(v1('198.51.100.7'));
    second.write(v1('198.51.100.7'));
    await first.request('mining.subscribe');
    await second.request('mining.subscribe');
    const refused = nextDisconnect(server, (e) => e.ip === '198.51.100.7');
    third.write(v1('198.51.100.7'));
    expect((await refused).reason).toBe<CloseReason>('per-ip-limit');
    await third.waitClosed();
    const other = await RawClient.connect(server.port);
    other.write(v1('198.51.100.8'));
    expect(await other.request('mining.subscribe')).toMatchObject({ error: null });
    for (const c of [first, second, other]) c.close();
  });

  it('closes a connection sending a PROXY header from an untrusted address, and one with a broken header', async () => {
    for (const header of [v1('198.51.100.30'), v2('proxy', '198.51.100.30')]) {
      const c = await RawClient.connect(server.port, '127.0.0.2');
      const closed = nextDisconnect(server, (e) => e.ip === '127.0.0.2');
      c.write(header);
      expect((await closed).reason).toBe<CloseReason>('proxy-from-untrusted');
      await c.waitClosed();
      expect(c.messages).toEqual([]);
    }
    const broken = await RawClient.connect(server.port);
    const closed = nextDisconnect(server, (e) => e.reason === 'bad-proxy-header');
    broken.write('PROXY TCP4 not-an-address 10.0.0.2 1 2\r\n');
    await closed;
    await broken.waitClosed();
  });
});

describe('drain', () => {
  it('sends client.reconnect in waves, saves every session first, closes the spool, and ends with no session', async () => {
    const logged: { msg: string; obj: Record<string, unknown> }[] = [];
    const log = (obj: object, msg?: string) =>
      logged.push({ obj: obj as Record<string, unknown>, msg: msg ?? '' });
    const logger: StratumLogger = { debug() {}, info: log, warn: log, error: log };
    const own = new TestJobSource();
    own.push(job('d1'));
    const { server: draining } = await h.start({
      jobs: own,
      logger,
      drain: { waveSize: 2, waveIntervalMs: 10, graceMs: 10_000 },
    });
    const batches: ShareBatch[] = [];
    draining.on('batch', (b) => batches.push(b));
    const clients = await Promise.all(Array.from({ length: 5 }, () => RawClient.connect(draining.port)));
    const sessions = [];
    for (const c of clients) {
      sessions.push(await c.handshake());
      expect(await c.request('mining.submit', share('d1'))).toMatchObject({ result: true });
      // A miner leaves when told to.
      c.nextNotification('client.reconnect').then(
        () => c.close(),
        () => {},
      );
    }
    await draining.drain();
    expect(clients.every((c) => c.messages.some((m) => m.method === 'client.reconnect'))).toBe(true);
    expect(draining.stats()).toMatchObject({ state: 'closed', connections: 0, sessions: 0 });
    expect(logged.filter((l) => l.msg === 'stratum: drain wave sent').map((l) => l.obj.sessions)).toEqual([
      2, 2, 1,
    ]);
    // The spool was closed cleanly: the open segment sealed into a batch holding the 5 shares.
    expect(batches.flatMap((b) => b.shares).length).toBe(5);
    expect(draining.spool!.stats()).toMatchObject({ open: 0, pendingShares: 5 });
    for (const s of sessions) {
      expect(await h.client.hget(h.keys.session(CHAIN, s.sessionId), 'extranonce1')).toBe(s.extranonce1);
    }
  });

  it('closes sessions that ignore client.reconnect once the grace time is over', async () => {
    const own = new TestJobSource();
    own.push(job('g1'));
    const { server: draining } = await h.start({ jobs: own, drain: { graceMs: 200 } });
    const stubborn = await RawClient.connect(draining.port);
    await stubborn.handshake();
    const closed = nextDisconnect(draining, () => true);
    await draining.drain();
    expect((await closed).reason).toBe<CloseReason>('drain-timeout');
    await stubborn.waitClosed();
  });

  it('moves sim miners to another server, where they resume with the same extranonce1 and difficulty', async () => {
    const shared = new TestJobSource();
    shared.push(job('m1'));
    const { server: to } = await h.start({ jobs: shared });
    const { server: from } = await h.start({
      jobs: shared,
      drain: { reconnectTo: { host: '127.0.0.1', port: to.port } },
    });
    const miners = await startSimMiners({
      host: '127.0.0.1',
      port: from.port,
      workers: 3,
      username: (i) => `${USER}${i}`,
      algorithm: 'sha256d',
      hashesPerSecondLimit: 60,
      password: 'd=3e-12',
    });
    try {
      await miners.until((s) => s.total.accepted >= 3);
      const before = miners
        .stats()
        .workers.map((w) => ({ sessionId: w.sessionId, extranonce1: w.extranonce1 }));
      await from.drain();
      const after = await miners.until((s) => s.total.resumes === 3 && s.total.connected === 3);
      expect(after.workers.map((w) => ({ sessionId: w.sessionId, extranonce1: w.extranonce1 }))).toEqual(
        before,
      );
      expect(after.workers.every((w) => w.port === to.port && w.difficulty === 3e-12)).toBe(true);
      const accepted = after.total.accepted;
      await miners.until((s) => s.total.accepted >= accepted + 3);
      expect(to.sessions().map((s) => s.resumed)).toEqual([true, true, true]);
    } finally {
      await miners.stop();
    }
  });
});
