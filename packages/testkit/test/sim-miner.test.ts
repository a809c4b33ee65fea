import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import {
  BITCOIN_REGTEST,
  type ChainParams,
  type CoinbaseTemplate,
  LITECOIN_REGTEST,
  assembleCoinbase,
  buildCoinbase,
  buildHeader,
  hashMeetsTarget,
  merkleBranch,
  merkleRootFromBranch,
  p2pkhScript,
  packMerkleBranch,
  powHash,
  prevHashFromStratum,
  sha256d,
  shareTarget,
  stratumPrevhashFromDisplay,
  targetToBuffer,
} from '@hashwire/chain';
import {
  LineFramer,
  type NotifyParams,
  type StratumRequest,
  type SubmitParams,
  parseStratumRequest,
} from '@hashwire/protocol';
import { type SimMiners, type SimNotifyEvent, type SimShare, startSimMiners } from '@hashwire/testkit';
import { afterEach, describe, expect, it } from 'vitest';

// ---- a scripted stratum server, just enough to drive one miner through each behaviour ----

interface ScriptedJob {
  readonly jobId: string;
  readonly notify: NotifyParams;
  readonly coinbase: CoinbaseTemplate;
  readonly branch: Buffer;
  readonly prevHash: Buffer;
  readonly version: number;
  readonly bits: number;
}

const EN2_SIZE = 4;

function makeJob(jobId: string, cleanJobs: boolean, seed = 1): ScriptedJob {
  const coinbase = buildCoinbase({
    params: LITECOIN_REGTEST,
    height: 500 + seed,
    coinbaseValueSat: 50 * 1e8,
    payouts: [{ script: p2pkhScript(Buffer.alloc(20, seed)) }],
    extranonce1Size: 4,
    extranonce2Size: EN2_SIZE,
  });
  const txids = [1, 2, 3].map((i) => sha256d(Buffer.of(seed, i)));
  const branch = merkleBranch(txids);
  const display = sha256d(Buffer.of(seed, 0xff)).toString('hex');
  const prevhash = stratumPrevhashFromDisplay(display);
  const version = 0x20000000;
  const bits = 0x207fffff;
  const ntime = 1_700_000_000 + seed;
  return {
    jobId,
    coinbase,
    branch: packMerkleBranch(branch),
    prevHash: prevHashFromStratum(prevhash),
    version,
    bits,
    notify: [
      jobId,
      prevhash,
      coinbase.coinb1.toString('hex'),
      coinbase.coinb2.toString('hex'),
      branch.map((h) => h.toString('hex')),
      version.toString(16).padStart(8, '0'),
      bits.toString(16).padStart(8, '0'),
      ntime.toString(16).padStart(8, '0'),
      cleanJobs,
    ],
  };
}

/** Recomputes a submitted share the way a pool does: coinbase, merkle root, header, PoW. */
function checkShare(
  job: ScriptedJob,
  extranonce1: Buffer,
  submit: SubmitParams,
  mask: number | null,
  diff: number,
  params: ChainParams,
): { meetsTarget: boolean; versionInMask: boolean } {
  const en2 = Buffer.from(submit[2], 'hex');
  const coinbaseTx = assembleCoinbase(job.coinbase, extranonce1, en2);
  const merkleRoot = merkleRootFromBranch(sha256d(coinbaseTx), job.branch);
  let version = job.version;
  let versionInMask = true;
  if (submit[5] !== undefined) {
    const bits = Number.parseInt(submit[5], 16);
    versionInMask = mask !== null && (bits & ~mask) === 0;
    if (mask !== null) version = ((version & ~mask) | (bits & mask)) >>> 0;
  }
  const header = buildHeader({
    version,
    prevHash: job.prevHash,
    merkleRoot,
    time: Number.parseInt(submit[3], 16),
    bits: job.bits,
    nonce: Number.parseInt(submit[4], 16),
  });
  const pow = powHash(params.algorithm, header);
  return { meetsTarget: hashMeetsTarget(pow, targetToBuffer(shareTarget(params, diff))), versionInMask };
}

interface ReceivedShare {
  params: SubmitParams;
  job: ScriptedJob;
  /** Difficulty the server judges it at: the one sent before the job's notify. */
  diff: number;
  meetsTarget: boolean;
  versionInMask: boolean;
  /** Whether a share that also meets `diff2` (when given) does. */
  answer: unknown;
}

/** One miner connection as the scripted server sees it. */
class ScriptedConnection extends EventEmitter<{ request: [StratumRequest] }> {
  readonly requests: StratumRequest[] = [];
  readonly shares: ReceivedShare[] = [];
  readonly closed: Promise<void>;
  extranonce1: Buffer;
  mask: number | null = null;
  difficulty = 1;
  private readonly jobs = new Map<string, { job: ScriptedJob; diff: number; extranonce1: Buffer }>();

  constructor(
    readonly socket: net.Socket,
    extranonce1: Buffer,
  ) {
    super();
    this.extranonce1 = extranonce1;
    const framer = new LineFramer();
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      for (const line of framer.push(chunk)) {
        const req = parseStratumRequest(line);
        this.requests.push(req);
        this.emit('request', req);
      }
    });
  }

  send(method: string, params: unknown[]): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify({ id: null, method, params })}\n`);
  }

  reply(id: unknown, result: unknown, error: unknown = null): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify({ id, result, error })}\n`);
  }

  setDifficulty(diff: number): void {
    this.difficulty = diff;
    this.send('mining.set_difficulty', [diff]);
  }

  notify(job: ScriptedJob): void {
    this.jobs.set(job.jobId, { job, diff: this.difficulty, extranonce1: this.extranonce1 });
    this.send('mining.notify', job.notify);
  }

  setExtranonce(extranonce1: Buffer): void {
    this.extranonce1 = extranonce1;
    this.send('mining.set_extranonce', [extranonce1.toString('hex'), EN2_SIZE]);
  }

  /** Validates a submit against the job it names; null when the job is unknown. */
  judge(req: StratumRequest, params: ChainParams): ReceivedShare | null {
    const submit = req.params as SubmitParams;
    const known = this.jobs.get(submit[1]);
    if (!known) return null;
    const check = checkShare(known.job, known.extranonce1, submit, this.mask, known.diff, params);
    const share: ReceivedShare = {
      params: submit,
      job: known.job,
      diff: known.diff,
      ...check,
      answer: undefined,
    };
    this.shares.push(share);
    return share;
  }

  sharesFor(jobId: string): ReceivedShare[] {
    return this.shares.filter((s) => s.params[1] === jobId);
  }
}

interface HandshakeScript {
  sessionId?: string;
  /** Mask the server grants in mining.configure (intersected with the miner's). */
  mask?: number;
  /** Answer submits (default: accept valid shares, reject others with 23). */
  onSubmit?: (conn: ScriptedConnection, req: StratumRequest) => void;
  /** After authorize: set_difficulty + notify this job at this difficulty. */
  difficulty?: number;
  job?: ScriptedJob;
  /** Resume: subscribe with a known session id gets its old extranonce1 back. */
  sessions?: Map<string, Buffer>;
}

class ScriptedServer {
  readonly connections: ScriptedConnection[] = [];
  private readonly server = net.createServer();
  private nextExtranonce = 0x10000000;
  private waiting: ((conn: ScriptedConnection) => void)[] = [];

  constructor(
    private readonly chain: ChainParams,
    private readonly script: HandshakeScript = {},
  ) {}

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async listen(): Promise<this> {
    this.server.on('connection', (socket) => {
      const conn = new ScriptedConnection(socket, Buffer.alloc(4));
      conn.extranonce1.writeUInt32BE(this.nextExtranonce++);
      this.connections.push(conn);
      conn.on('request', (req) => this.handle(conn, req));
      for (const wake of this.waiting.splice(0)) wake(conn);
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return this;
  }

  /** The n-th connection (0-based), once it exists. */
  connection(n: number): Promise<ScriptedConnection> {
    const existing = this.connections[n];
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve) => {
      const wait = (): void => {
        const conn = this.connections[n];
        if (conn) resolve(conn);
        else this.waiting.push(wait);
      };
      this.waiting.push(wait);
    });
  }

  private handle(conn: ScriptedConnection, req: StratumRequest): void {
    const { script } = this;
    switch (req.method) {
      case 'mining.configure': {
        const [, ext] = req.params as [string[], Record<string, string>];
        const asked = Number.parseInt(ext['version-rolling.mask'] ?? '0', 16);
        conn.mask = ((script.mask ?? 0x1fffe000) & asked) >>> 0;
        conn.reply(req.id, {
          'version-rolling': true,
          'version-rolling.mask': conn.mask.toString(16).padStart(8, '0'),
          'minimum-difficulty': true,
        });
        return;
      }
      case 'mining.subscribe': {
        const asked = req.params[1];
        const resumed = typeof asked === 'string' ? script.sessions?.get(asked) : undefined;
        if (resumed) conn.extranonce1 = resumed;
        const sessionId =
          resumed && typeof asked === 'string'
            ? asked
            : `${script.sessionId ?? 'sess'}-${conn.extranonce1.toString('hex')}`;
        script.sessions?.set(sessionId, conn.extranonce1);
        conn.reply(req.id, [
          [
            ['mining.set_difficulty', sessionId],
            ['mining.notify', sessionId],
          ],
          conn.extranonce1.toString('hex'),
          EN2_SIZE,
        ]);
        return;
      }
      case 'mining.extranonce.subscribe':
      case 'mining.suggest_difficulty':
        conn.reply(req.id, true);
        return;
      case 'mining.authorize':
        conn.reply(req.id, true);
        if (script.job) {
          conn.setDifficulty(script.difficulty ?? 1);
          conn.notify(script.job);
        }
        return;
      case 'mining.submit': {
        if (script.onSubmit) {
          script.onSubmit(conn, req);
          return;
        }
        const share = conn.judge(req, this.chain);
        if (!share) {
          conn.reply(req.id, null, [21, 'job not found', null]);
          return;
        }
        const ok = share.meetsTarget && share.versionInMask;
        share.answer = ok;
        conn.reply(req.id, ok, ok ? null : [23, 'low difficulty share', null]);
        return;
      }
      default:
        conn.reply(req.id, null, [20, `unknown method ${req.method}`, null]);
    }
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    await Promise.all(this.connections.map((c) => c.closed));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// A hash meets scrypt difficulty D with probability about 2^-16/D (target = diff1·65536/D), and
// sha256d difficulty D with about 2^-32/D.
const SCRYPT_DIFF = 1 / 256; // one share per ~256 scrypt hashes
const SHA_DIFF = 2 ** -18; // one share per ~16k sha256d hashes

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(chain: ChainParams, script: HandshakeScript = {}): Promise<ScriptedServer> {
  const s = await new ScriptedServer(chain, script).listen();
  cleanups.push(() => s.close());
  return s;
}

async function miners(options: Parameters<typeof startSimMiners>[0]): Promise<SimMiners> {
  const m = await startSimMiners(options);
  cleanups.push(() => m.stop());
  return m;
}

/** Every one of these shares has its answer (shares found later may still be in flight). */
function answered(shares: SimShare[]): boolean {
  return shares.every((s) => s.answer !== 'pending');
}

function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

describe('sim miner against a scripted stratum server', () => {
  it('scrypt: subscribes, authorizes, and every submitted share meets the target when recomputed', async () => {
    const job = makeJob('a1', true);
    const srv = await server(LITECOIN_REGTEST, { job, difficulty: SCRYPT_DIFF });
    const m = await miners({
      host: '127.0.0.1',
      port: srv.port,
      workers: 2,
      username: (i) => `ltc1qsimminer.w${i}`,
      password: 'd=0.004',
      algorithm: 'scrypt',
      suggestDifficulty: 0.004,
    });
    const stats = await m.until((s) => s.workers.every((w) => w.accepted >= 3), 20_000);

    expect(stats.total.rejected).toBe(0);
    expect(stats.total.authorized).toBe(2);
    const [a, b] = stats.workers;
    expect(a!.extranonce1).not.toBe(b!.extranonce1);
    expect(a!.difficulty).toBe(SCRYPT_DIFF);
    expect(a!.jobId).toBe('a1');
    expect(stats.total.hashes).toBeGreaterThan(0);
    for (const [i, conn] of srv.connections.entries()) {
      const methods = conn.requests.map((r) => r.method);
      // no version rolling asked for: no configure
      expect(methods.slice(0, 4)).toEqual([
        'mining.subscribe',
        'mining.extranonce.subscribe',
        'mining.suggest_difficulty',
        'mining.authorize',
      ]);
      expect(conn.requests[0]!.params).toEqual(['hashwire-sim/0.1']);
      expect(conn.requests.find((r) => r.method === 'mining.suggest_difficulty')!.params).toEqual([0.004]);
      const authorize = conn.requests.find((r) => r.method === 'mining.authorize')!;
      expect(authorize.params).toEqual([`ltc1qsimminer.w${i}`, 'd=0.004']);
      expect(conn.shares.length).toBeGreaterThanOrEqual(3);
      for (const share of conn.shares) {
        expect(share.meetsTarget).toBe(true);
        expect(share.params).toHaveLength(5);
        expect(share.params[0]).toBe(`ltc1qsimminer.w${i}`);
        expect(share.params[2]).toMatch(/^[0-9a-f]{8}$/);
      }
      // never the same share twice
      const keys = conn.shares.map((s) => s.params.slice(1).join(':'));
      expect(new Set(keys).size).toBe(keys.length);
    }
  });

  it('sha256d: version bits are rolled inside the negotiated mask, and set_version_mask narrows it', async () => {
    const jobA = makeJob('va', true, 2);
    const jobB = makeJob('vb', true, 3);
    const srv = await server(BITCOIN_REGTEST, { job: jobA, difficulty: SHA_DIFF, mask: 0x0fffe000 });
    const m = await miners({
      host: '127.0.0.1',
      port: srv.port,
      username: 'bcrt1qsim.rig',
      algorithm: 'sha256d',
      versionRolling: true,
      minimumDifficulty: 0.001,
      recordShares: true,
    });
    const conn = await srv.connection(0);
    expect(conn.requests[0]).toMatchObject({
      method: 'mining.configure',
      params: [
        ['version-rolling', 'minimum-difficulty'],
        {
          'version-rolling.mask': '1fffe000',
          'version-rolling.min-bit-count': 2,
          'minimum-difficulty.value': 0.001,
        },
      ],
    });
    await m.until(() => new Set(conn.sharesFor('va').map((s) => s.params[5])).size >= 3, 20_000);
    expect(m.stats().workers[0]!.versionMask).toBe('0fffe000');

    // The new mask goes out before the next job: every share of that job must fit it.
    conn.mask = 0x00ffe000;
    conn.send('mining.set_version_mask', ['00ffe000']);
    conn.notify(jobB);
    await m.until(() => new Set(conn.sharesFor('vb').map((s) => s.params[5])).size >= 3, 20_000);

    for (const share of conn.shares) {
      expect(share.params).toHaveLength(6);
      expect(share.meetsTarget).toBe(true);
    }
    for (const share of conn.sharesFor('va')) {
      expect(Number.parseInt(share.params[5]!, 16) & ~0x0fffe000).toBe(0);
    }
    for (const share of conn.sharesFor('vb')) {
      expect(share.versionInMask).toBe(true);
      expect(Number.parseInt(share.params[5]!, 16) & ~0x00ffe000).toBe(0);
    }
    expect(m.stats().workers[0]!.versionMask).toBe('00ffe000');
    const recorded = m.shares().filter((s) => s.jobId === 'vb');
    expect(
      recorded.every(
        (s) =>
          s.versionBits !== null &&
          s.version === (0x20000000 | Number.parseInt(s.versionBits, 16)).toString(16).padStart(8, '0'),
      ),
    ).toBe(true);
  });

  it('set_difficulty applies to the next job: the job being mined keeps its difficulty', async () => {
    const d1 = 2 ** -18;
    const d2 = 2 ** -14; // 16 times harder
    const jobA = makeJob('da', true, 4);
    const jobB = makeJob('db', false, 5);
    const srv = await server(BITCOIN_REGTEST, { job: jobA, difficulty: d1 });
    const m = await miners({
      host: '127.0.0.1',
      port: srv.port,
      username: 'bcrt1qsim.diff',
      algorithm: 'sha256d',
      recordShares: true,
    });
    const conn = await srv.connection(0);
    await m.until((s) => s.total.accepted >= 3, 20_000);

    conn.setDifficulty(d2);
    await m.until((s) => s.workers[0]!.difficulty === d2, 10_000);
    const before = m.shares().length;
    // Shares found after the miner took the new difficulty, still on job A.
    await m.until(() => m.shares().length >= before + 8, 20_000);
    await m.until(() => answered(m.shares().slice(before, before + 8)), 10_000);
    const afterChange = m.shares().slice(before, before + 8);
    expect(afterChange.every((s) => s.jobId === 'da' && s.difficulty === d1)).toBe(true);
    // Judged at d1 they all pass; most of them would fail d2.
    const judged = afterChange.map(
      (s) => conn.shares.find((r) => r.params[4] === s.nonce && r.params[2] === s.extranonce2)!,
    );
    expect(judged.every((r) => r.meetsTarget)).toBe(true);
    expect(afterChange.filter((s) => s.shareDifficulty < d2).length).toBeGreaterThan(0);

    conn.notify(jobB);
    await m.until(() => m.shares().filter((s) => s.jobId === 'db').length >= 3, 30_000);
    const onB = m.shares().filter((s) => s.jobId === 'db');
    expect(onB.every((s) => s.difficulty === d2 && s.shareDifficulty >= d2)).toBe(true);
    expect(conn.sharesFor('db').every((r) => r.diff === d2 && r.meetsTarget)).toBe(true);
    expect(m.stats().total.rejected).toBe(0);
  });

  it('clean_jobs drops old work; set_extranonce takes effect with the next job', async () => {
    const jobA = makeJob('ca', true, 6);
    const jobB = makeJob('cb', true, 7);
    const srv = await server(LITECOIN_REGTEST, { job: jobA, difficulty: SCRYPT_DIFF });
    const m = await miners({
      host: '127.0.0.1',
      port: srv.port,
      username: 'rltc1qsim.clean',
      algorithm: 'scrypt',
      recordShares: true,
    });
    const conn = await srv.connection(0);
    await m.until((s) => s.total.accepted >= 2, 20_000);
    const oldExtranonce = conn.extranonce1.toString('hex');
    const notifies: SimNotifyEvent[] = [];
    m.on('notify', (e) => notifies.push(e));
    conn.setExtranonce(Buffer.from('cafebabe', 'hex'));
    conn.notify(jobB);
    await m.until(() => m.shares().filter((s) => s.jobId === 'cb').length >= 3, 20_000);
    const count = m.shares().length;
    await m.until(() => answered(m.shares().slice(0, count)), 10_000);

    const shares = m.shares().slice(0, count);
    const firstB = shares.findIndex((s) => s.jobId === 'cb');
    expect(shares.slice(firstB).every((s) => s.jobId === 'cb')).toBe(true);
    expect(shares.slice(0, firstB).every((s) => s.extranonce1 === oldExtranonce)).toBe(true);
    expect(shares.slice(firstB).every((s) => s.extranonce1 === 'cafebabe')).toBe(true);
    expect(conn.shares.every((r) => r.meetsTarget)).toBe(true);
    expect(m.stats().total.rejected).toBe(0);
    expect(m.stats().workers[0]!.extranonce1).toBe('cafebabe');
    expect(notifies).toEqual([
      { worker: 0, jobId: 'cb', prevhash: jobB.notify[1], cleanJobs: true, difficulty: SCRYPT_DIFF },
    ]);
  });

  it('client.reconnect: the miner moves to the new address and resumes its session there', async () => {
    const sessions = new Map<string, Buffer>();
    const job = makeJob('ra', true, 8);
    const first = await server(LITECOIN_REGTEST, {
      job,
      difficulty: SCRYPT_DIFF,
      sessions,
      sessionId: 'one',
    });
    const second = await server(LITECOIN_REGTEST, {
      job,
      difficulty: SCRYPT_DIFF,
      sessions,
      sessionId: 'two',
    });
    const m = await miners({
      host: '127.0.0.1',
      port: first.port,
      username: 'rltc1qsim.move',
      algorithm: 'scrypt',
    });
    const reconnects: unknown[] = [];
    m.on('reconnect', (e) => reconnects.push(e));
    const old = await first.connection(0);
    await m.until((s) => s.total.accepted >= 2, 20_000);
    const { sessionId, extranonce1 } = m.stats().workers[0]!;
    expect(sessionId).toBe(`one-${old.extranonce1.toString('hex')}`);

    old.send('client.reconnect', ['127.0.0.1', second.port, 0]);
    const moved = await second.connection(0);
    await old.closed;
    const stats = await m.until((s) => s.workers[0]!.accepted >= 4 && moved.shares.length >= 2, 20_000);

    expect(moved.requests.find((r) => r.method === 'mining.subscribe')!.params).toEqual([
      'hashwire-sim/0.1',
      sessionId,
    ]);
    const w = stats.workers[0]!;
    expect(w).toMatchObject({ reconnects: 1, resumes: 1, sessionId, extranonce1, port: second.port });
    expect(reconnects).toEqual([
      {
        worker: 0,
        host: '127.0.0.1',
        port: second.port,
        reason: 'client.reconnect',
        resumed: true,
        sessionId,
        extranonce1,
      },
    ]);
    expect(moved.shares.every((r) => r.meetsTarget && r.params[0] === 'rltc1qsim.move')).toBe(true);
    expect(w.rejected).toBe(0);
  });

  it('comes back after the server drops the connection, asking for the same session', async () => {
    const sessions = new Map<string, Buffer>();
    const job = makeJob('ka', true, 9);
    const srv = await server(LITECOIN_REGTEST, { job, difficulty: SCRYPT_DIFF, sessions });
    const m = await miners({
      host: '127.0.0.1',
      port: srv.port,
      username: 'rltc1qsim.drop',
      algorithm: 'scrypt',
      reconnectDelayMs: 10,
    });
    const first = await srv.connection(0);
    await m.until((s) => s.total.accepted >= 1, 20_000);
    const { sessionId, extranonce1 } = m.stats().workers[0]!;
    first.socket.destroy();
    const second = await srv.connection(1);
    await m.until((s) => s.workers[0]!.resumes === 1 && second.shares.length >= 1, 20_000);
    expect(second.requests.find((r) => r.method === 'mining.subscribe')!.params[1]).toBe(sessionId);
    expect(m.stats().workers[0]).toMatchObject({ reconnects: 1, sessionId, extranonce1, connected: true });
  });

  it('records every share with the answer it got, including no answer when the connection drops', async () => {
    const job = makeJob('sa', true, 10);
    const answers: [unknown, unknown][] = [
      [true, null],
      [null, [23, 'low difficulty share', null]],
      [null, [21, 'job not found', null]],
      [null, [22, 'duplicate share', null]],
      [false, null],
    ];
    const answered = new Map<string, [unknown, unknown]>();
    let submits = 0;
    const srv = await server(BITCOIN_REGTEST, {
      job,
      difficulty: SHA_DIFF,
      onSubmit: (conn, req) => {
        const n = submits++;
        const answer = answers[n];
        if (answer) {
          answered.set(JSON.stringify(req.params), answer);
          conn.reply(req.id, answer[0], answer[1]);
        } else if (n === answers.length + 2) {
          // two unanswered, then the connection goes
          conn.socket.destroy();
        }
      },
    });
    const m = await miners({
      host: '127.0.0.1',
      port: srv.port,
      username: 'bcrt1qsim.rec',
      algorithm: 'sha256d',
      recordShares: true,
      reconnectOnClose: false,
    });
    const events = { accepted: 0, rejected: 0 };
    m.on('accepted', () => events.accepted++);
    m.on('rejected', () => events.rejected++);
    const stats = await m.until(
      (s) => !s.workers[0]!.connected && m.shares().every((sh) => sh.answer !== 'pending'),
      20_000,
    );

    const shares = m.shares();
    expect(shares.length).toBe(stats.total.submitted);
    expect(shares.length).toBeGreaterThanOrEqual(answers.length + 3);
    for (const share of shares) {
      const answer = answered.get(JSON.stringify(share.params));
      if (!answer) {
        expect(share.answer).toBe('no answer');
      } else if (answer[0] === true) {
        expect(share).toMatchObject({ answer: 'accepted', code: null });
      } else {
        const code = Array.isArray(answer[1]) ? answer[1][0] : 20;
        expect(share).toMatchObject({ answer: 'rejected', code });
      }
      expect(share.params.slice(1)).toEqual([share.jobId, share.extranonce2, share.ntime, share.nonce]);
    }
    expect(stats.total).toMatchObject({
      accepted: 1,
      rejected: 4,
      lowDifficulty: 1,
      stale: 1,
      duplicate: 1,
      rejectedByCode: { 20: 1, 21: 1, 22: 1, 23: 1 },
      noAnswer: shares.length - answers.length,
    });
    expect(events).toEqual({ accepted: 1, rejected: 4 });
    expect(stats.workers[0]!.state).toBe('disconnected');
    // nbits 207fffff is an easier target than the share target: every share is a block candidate
    expect(shares.every((s: SimShare) => s.blockCandidate)).toBe(true);
    expect(stats.total.blockCandidates).toBe(shares.length);
  });

  it('stop() closes every socket, and shares in flight end as no answer', async () => {
    const baseline = tcpSockets();
    const job = makeJob('xa', true, 11);
    const srv = await server(LITECOIN_REGTEST, {
      job,
      difficulty: SCRYPT_DIFF,
      onSubmit: () => {}, // never answers: every share stays in flight
    });
    const m = await miners({
      host: '127.0.0.1',
      port: srv.port,
      workers: 4,
      username: (i) => `rltc1qsim.stop${i}`,
      algorithm: 'scrypt',
      recordShares: true,
    });
    await m.until((s) => s.total.submitted >= 4, 20_000);
    expect(tcpSockets()).toBe(baseline + 8); // 4 miner sockets + 4 accepted on the server
    await m.stop();
    await Promise.all(srv.connections.map((c) => c.closed));
    expect(tcpSockets()).toBe(baseline);
    const stats = m.stats();
    expect(stats.workers.every((w) => w.state === 'stopped' && !w.connected)).toBe(true);
    expect(m.shares().every((s) => s.answer === 'no answer')).toBe(true);
    expect(stats.total.noAnswer).toBe(stats.total.submitted);
    const hashes = stats.total.hashes;
    await new Promise((resolve) => setImmediate(resolve));
    expect(m.stats().total.hashes).toBe(hashes);
    await expect(m.until((s) => s.total.accepted > 0, 1000)).rejects.toThrow(/stopped/);
  });

  it('hashesPerSecondLimit caps the hash rate of all workers together', async () => {
    const job = makeJob('la', true, 12);
    const srv = await server(BITCOIN_REGTEST, { job, difficulty: SHA_DIFF });
    const limit = 20_000;
    const m = await miners({
      host: '127.0.0.1',
      port: srv.port,
      workers: 2,
      username: 'bcrt1qsim.slow',
      algorithm: 'sha256d',
      hashesPerSecondLimit: limit,
    });
    const stats = await m.until((s) => s.total.hashes >= 10_000, 20_000);
    // Paced per batch (limit/20 hashes per worker): never more than one batch per worker ahead.
    const allowed = (limit * stats.total.elapsedMs) / 1000 + 2 * (limit / 2 / 20);
    expect(stats.total.hashes).toBeLessThanOrEqual(allowed);
  });

  it('refuses bad options and reports a server nobody listens on', async () => {
    await expect(
      startSimMiners({ host: '127.0.0.1', port: 1, username: 'x', algorithm: 'x11' as 'scrypt' }),
    ).rejects.toThrow(/algorithm must be "scrypt" or "sha256d"/);
    await expect(
      startSimMiners({ host: '127.0.0.1', port: 1, workers: 0, username: 'x', algorithm: 'scrypt' }),
    ).rejects.toThrow(/workers must be a positive integer/);
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as net.AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    await expect(
      startSimMiners({
        host: '127.0.0.1',
        port,
        username: 'x',
        algorithm: 'scrypt',
        reconnectOnClose: false,
      }),
    ).rejects.toThrow(/gave up before authorizing: connect failed: .*ECONNREFUSED/);
  });

  it('says why no worker got authorized when the pool answers subscribe wrongly', async () => {
    const pool = net.createServer((socket) => {
      const framer = new LineFramer();
      socket.on('data', (chunk: Buffer) => {
        for (const line of framer.push(chunk)) {
          const { id } = parseStratumRequest(line);
          socket.write(`${JSON.stringify({ id, result: [[], 'abc', 4], error: null })}\n`);
        }
      });
    });
    pool.listen(0, '127.0.0.1');
    await once(pool, 'listening');
    cleanups.push(() => new Promise((resolve) => pool.close(() => resolve())));
    await expect(
      startSimMiners({
        host: '127.0.0.1',
        port: (pool.address() as net.AddressInfo).port,
        username: 'x',
        algorithm: 'scrypt',
        reconnectDelayMs: 20,
        startTimeoutMs: 300,
      }),
    ).rejects.toThrow(
      /1 of 1 workers not authorized .*handshake failed: subscribe reply: extranonce1 must be hex/,
    );
  });
});
