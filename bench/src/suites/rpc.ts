import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Job } from '@hashwire/protocol';
import { type RpcClient, type RpcServer, createRpcClient, createRpcServer } from '@hashwire/rpc';
import { Dealer, Router } from 'zeromq';
import { benchScript } from '../child-ipc.js';
import { percentile, within } from '../measure.js';
import type { BenchContext, BenchResult, BenchSuite } from '../types.js';

interface EchoMethods {
  'bench.echo': { req: { seq: number; pad: string }; rep: { seq: number; pad: string } };
}

const PACED_RATE_PER_S = 10_000;
const SUBSCRIBERS = 50;
const JOB_BYTES = 2048;

/**
 * Request–reply latency at a paced 10,000 req/s and the most a single client gets through, and
 * the time for one 2 KB job push to reach the last of 50 subscribers. Baselines are raw ZeroMQ
 * in the same process: a DEALER/ROUTER echo of bare bytes, and 50 bare ROUTER sends.
 */
export const rpcSuite: BenchSuite = {
  name: 'rpc',
  description: 'ZeroMQ RPC: request–reply latency and job push fan-out',
  async run(ctx) {
    const seconds = ctx.quick ? 0.5 : 3;
    const results: BenchResult[] = [];
    results.push(...(await requestReply(ctx, seconds)));
    results.push(await fanout(ctx, ctx.quick ? 40 : 400));
    return results;
  },
};

const ms = (v: number) => Number(v.toFixed(3));

/** Starts the benchmark's echo server in a child process (rpc-peer.js) and returns its endpoint. */
async function startPeer(mode: 'rpc' | 'raw'): Promise<{ endpoint: string; stop: () => void }> {
  const script = benchScript('rpc-peer');
  const child = spawn(process.execPath, [script, mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [endpoint] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { endpoint, stop: () => child.kill('SIGKILL') };
}

async function requestReply(ctx: BenchContext, seconds: number): Promise<BenchResult[]> {
  // Server and client in different processes, as services run: the client process paces
  // and measures, the server process answers.
  const rpcPeer = await startPeer('rpc');
  const rawPeer = await startPeer('raw');
  const client = createRpcClient<EchoMethods>(rpcPeer.endpoint);
  const raw = await RawEcho.start(rawPeer.endpoint);
  try {
    const pad = 'x'.repeat(64);
    let seq = 0;
    const call = () => client.request('bench.echo', { seq: seq++, pad });
    const rawCall = () => raw.call();

    ctx.log(`rpc: request–reply paced at ${PACED_RATE_PER_S}/s for ${seconds}s (and raw echo baseline)`);
    await pacedLatencies(call, PACED_RATE_PER_S, Math.min(0.3, seconds)); // warm-up
    const rpc = await pacedLatencies(call, PACED_RATE_PER_S, seconds);
    await pacedLatencies(rawCall, PACED_RATE_PER_S, Math.min(0.3, seconds));
    const bare = await pacedLatencies(rawCall, PACED_RATE_PER_S, seconds);

    ctx.log('rpc: request–reply max throughput, 256 in flight');
    const rpcRate = await maxThroughput(call, seconds);
    const rawRate = await maxThroughput(rawCall, seconds);

    const p99 = percentile(rpc.latencies, 99);
    const failed = rpc.failed > 0 ? `, ${rpc.failed} of ${rpc.failed + rpc.latencies.length} failed` : '';
    return [
      {
        name: 'rpc.reqrep_p99_ms',
        value: ms(p99),
        unit: `ms (p99${failed})`,
        higherIsBetter: false,
        baseline: {
          name: `raw DEALER/ROUTER echo p99${bare.failed > 0 ? `, ${bare.failed} of ${bare.failed + bare.latencies.length} failed` : ''}`,
          value: ms(percentile(bare.latencies, 99)),
        },
        target: '< 1 ms, none failed',
        met: p99 < 1 && rpc.failed === 0,
      },
      {
        name: 'rpc.reqrep_p50_ms',
        value: ms(percentile(rpc.latencies, 50)),
        unit: 'ms',
        higherIsBetter: false,
        baseline: { name: 'raw DEALER/ROUTER echo p50', value: ms(percentile(bare.latencies, 50)) },
      },
      {
        name: 'rpc.reqrep_max_throughput_per_s',
        value: Math.round(rpcRate),
        unit: 'req/s',
        higherIsBetter: true,
        baseline: { name: 'raw DEALER/ROUTER echo', value: Math.round(rawRate) },
      },
    ];
  } finally {
    await client.close();
    await raw.close();
    rpcPeer.stop();
    rawPeer.stop();
  }
}

async function fanout(ctx: BenchContext, rounds: number): Promise<BenchResult> {
  const server: RpcServer = await createRpcServer({
    handlers: {
      'jm.subscribe': ({ chain }, call) => {
        call.subscribe(chain);
        return { job: null };
      },
    },
  });
  const clients: RpcClient[] = Array.from({ length: SUBSCRIBERS }, () => createRpcClient(server.endpoint));
  const raw = await RawFanout.start(SUBSCRIBERS);
  try {
    ctx.log(
      `rpc: ${rounds} pushes of a 2 KB job to ${SUBSCRIBERS} subscribers (and ${SUBSCRIBERS} raw sends)`,
    );
    await Promise.all(
      clients.map((c, i) => c.subscribe('jm.subscribe', { stratumId: `bench-${i}`, chain: 'ltc' })),
    );
    let remaining = 0;
    let roundDone: () => void = () => {};
    for (const c of clients) {
      c.onPush('job', () => {
        if (--remaining === 0) roundDone();
      });
    }
    const job = benchJob();
    const pushRound = () =>
      new Promise<void>((resolve) => {
        remaining = SUBSCRIBERS;
        roundDone = resolve;
        server.push('ltc', 'job', job);
      });
    const pushed = `a job push to all ${SUBSCRIBERS} subscribers`;
    const sent = `a raw send to all ${SUBSCRIBERS} DEALERs`;
    await timedRounds(pushRound, Math.min(20, rounds), pushed); // warm-up
    const rpc = await timedRounds(pushRound, rounds, pushed);
    await timedRounds(() => raw.round(), Math.min(20, rounds), sent);
    const bare = await timedRounds(() => raw.round(), rounds, sent);

    const p99 = percentile(rpc, 99);
    return {
      name: 'rpc.push_fanout50_p99_ms',
      value: ms(p99),
      unit: 'ms (p99)',
      higherIsBetter: false,
      baseline: { name: `${SUBSCRIBERS} raw ROUTER sends p99`, value: ms(percentile(bare, 99)) },
      target: '< 5 ms',
      met: p99 < 5,
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
    await raw.close();
  }
}

interface Paced {
  /** Latency of every answered call, in ms. */
  latencies: number[];
  /** Calls that failed (e.g. the send queue was full while the machine stalled the server). */
  failed: number;
}

/**
 * Calls `call` at `ratePerS` for `seconds` without waiting for replies. Latency counts from when
 * each call was due, so a stalled sender shows in the figures instead of hiding. A failed call is
 * counted, never retried: the result says how many.
 */
function pacedLatencies(call: () => Promise<unknown>, ratePerS: number, seconds: number): Promise<Paced> {
  const total = Math.max(1, Math.round(ratePerS * seconds));
  const periodMs = 1000 / ratePerS;
  const result: Paced = { latencies: [], failed: 0 };
  const start = performance.now();
  let sent = 0;
  return new Promise((resolve) => {
    const settled = () => {
      if (result.latencies.length + result.failed === total) resolve(result);
    };
    const pump = () => {
      const due = Math.min(total, Math.floor((performance.now() - start) / periodMs) + 1);
      while (sent < due) {
        const dueAt = start + sent * periodMs;
        sent++;
        call().then(
          () => {
            result.latencies.push(performance.now() - dueAt);
            settled();
          },
          () => {
            result.failed++;
            settled();
          },
        );
      }
      if (sent < total) setImmediate(pump);
    };
    pump();
  });
}

/** Answered calls per second with `window` calls always in flight (a failed call counts for nothing). */
async function maxThroughput(call: () => Promise<unknown>, seconds: number, window = 256): Promise<number> {
  let completed = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  const answered = () =>
    call().then(
      () => true,
      () => false,
    );
  const worker = async () => {
    // Not `completed += await …`: that reads `completed` before the await, and 256 workers
    // would overwrite each other's counts.
    while (performance.now() < until) if (await answered()) completed++;
  };
  await Promise.all(Array.from({ length: window }, worker));
  return completed / ((performance.now() - start) / 1000);
}

/** A fan-out round takes milliseconds; one that has not completed in this long never will. */
const ROUND_DEADLINE_MS = 10_000;

/** Duration of each of `rounds` sequential rounds, in ms. */
async function timedRounds(round: () => Promise<void>, rounds: number, what: string): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await within(round(), ROUND_DEADLINE_MS, `${what}, round ${i + 1}`);
    samples.push(performance.now() - start);
  }
  return samples;
}

/** A stratum job of about 2 KB once encoded, the size the issue measures. */
function benchJob(): Job {
  return {
    chain: 'ltc',
    epoch: 7,
    jobId: '1a2b3c4d',
    jmId: 'jm-bench',
    height: 2_800_000,
    prevhash: 'ab'.repeat(32),
    coinb1: '01'.repeat(400),
    coinb2: 'ff'.repeat(100),
    merkleBranch: Array.from({ length: 12 }, (_, i) => i.toString(16).padStart(2, '0').repeat(32)),
    version: '20000000',
    nbits: '1a01cd2d',
    ntime: '66a1b2c3',
    cleanJobs: true,
    target: `00000000${'f'.repeat(56)}`,
    createdAt: 1_700_000_000_000,
  };
}

/** How long a raw echo waits for its reply: the RPC client's default request timeout. */
const RAW_TIMEOUT_MS = 5000;

/**
 * Baseline: bare bytes echoed by a ROUTER to a DEALER, matched by a 4-byte sequence number. Same
 * socket settings as the RPC package (`sendTimeout: 0`, `linger: 0`). A call fails, as an RPC
 * call does, when its send is refused (a full queue) or no reply comes within RAW_TIMEOUT_MS (a
 * ROUTER drops what it cannot queue): waiting for it forever hung the suite.
 */
class RawEcho {
  private seq = 0;
  private readonly waiting = new Map<number, (error?: Error) => void>();
  private readonly payload = Buffer.alloc(80, 0x78);

  private constructor(
    private readonly dealer: Dealer,
    private readonly loops: Promise<void>[],
  ) {}

  static async start(endpoint: string): Promise<RawEcho> {
    const dealer = new Dealer({ linger: 0, sendTimeout: 0 });
    dealer.connect(endpoint);
    const echo = new RawEcho(dealer, []);
    echo.loops.push(
      (async () => {
        for await (const [seq] of dealer) echo.waiting.get((seq as Buffer).readUInt32BE(0))?.();
        // Closed: whatever is still waiting will not be answered.
        for (const settle of [...echo.waiting.values()]) settle(new Error('raw echo closed'));
      })(),
    );
    return echo;
  }

  call(): Promise<void> {
    const seq = this.seq++ >>> 0;
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(seq, 0);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new Error(`no echo within ${RAW_TIMEOUT_MS} ms`)),
        RAW_TIMEOUT_MS,
      );
      const settle = (error?: Error) => {
        if (!this.waiting.delete(seq)) return;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      this.waiting.set(seq, settle);
      this.dealer.send([header, this.payload]).catch((error: Error) => settle(error));
    });
  }

  async close(): Promise<void> {
    this.dealer.close();
    await Promise.allSettled(this.loops);
  }
}

/** Baseline: one 2 KB buffer sent by a ROUTER to each of `count` DEALERs. */
class RawFanout {
  private remaining = 0;
  private roundDone: () => void = () => {};
  private readonly frame = Buffer.alloc(JOB_BYTES, 0x61);

  private constructor(
    private readonly router: Router,
    private readonly dealers: Dealer[],
    private readonly identities: Buffer[],
    private readonly loops: Promise<void>[],
  ) {}

  static async start(count: number): Promise<RawFanout> {
    const router = new Router({ linger: 0, sendTimeout: 0 });
    await router.bind('tcp://127.0.0.1:*');
    const dealers = Array.from({ length: count }, () => {
      const dealer = new Dealer({ linger: 0, sendTimeout: 0 });
      dealer.connect(router.lastEndpoint as string);
      return dealer;
    });
    const fanout = new RawFanout(router, dealers, [], []);
    // Each DEALER says hello so the ROUTER learns its routing id, as a subscribe call would.
    await Promise.all(dealers.map((d) => d.send('hello')));
    for (let i = 0; i < count; i++) {
      const [identity] = await router.receive();
      fanout.identities.push(identity as Buffer);
    }
    for (const dealer of dealers) {
      fanout.loops.push(
        (async () => {
          for await (const _ of dealer) if (--fanout.remaining === 0) fanout.roundDone();
        })(),
      );
    }
    return fanout;
  }

  /** Resolves when every DEALER has the frame; rejects when a send is refused (it would never arrive). */
  round(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.remaining = this.identities.length;
      this.roundDone = resolve;
      for (const identity of this.identities) this.router.send([identity, this.frame]).catch(reject);
    });
  }

  async close(): Promise<void> {
    for (const dealer of this.dealers) dealer.close();
    this.router.close();
    await Promise.allSettled(this.loops);
  }
}
