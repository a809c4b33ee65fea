// The server side of the `stratum` bench, alone in its process so its RSS is the server's:
// one stratum server on a fixed synthetic regtest job source, a control port on which the
// session process triggers fan-outs (one clock: the one that timestamps the arrivals), and
// the same-run baseline, a bare loop writing one prebuilt buffer to the server's sockets.
// Run with --expose-gc; driven by `serveParent` requests.
import { randomBytes } from 'node:crypto';
import { subscribe } from 'node:diagnostics_channel';
import { EventEmitter, once } from 'node:events';
import { type Socket, createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { LITECOIN_REGTEST, addressToScript, buildJob } from '@hashwire/chain';
import { type Job, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type JobSource, type StratumServer, createStratumServer, prepareJob } from '@hashwire/stratum';
import { serveParent } from './child-ipc.js';
import {
  BENCH_ADDRESS,
  type ServerStartParams,
  type ServerStarted,
  type SubmitServerParams,
  type SubmitServerStarted,
  benchTemplate,
  fanoutIds,
} from './stratum-bench-shared.js';

const BENCH_CHAIN = 'ltc-regtest';
const EXTRANONCE1_SIZE = 4;
const EXTRANONCE2_SIZE = 8;

class PushedJobs implements JobSource {
  private readonly emitter = new EventEmitter<{ job: [Job] }>();
  private latest: Job | null = null;

  push(job: Job): void {
    this.latest = job;
    this.emitter.emit('job', job);
  }

  current(): Job | null {
    return this.latest;
  }

  onJob(cb: (job: Job) => void): () => void {
    this.emitter.on('job', cb);
    return () => this.emitter.off('job', cb);
  }
}

function makeJob(txids: readonly string[], jobId: string, height: number, solo = false): Job {
  return buildJob({
    // SOLO: each session's coinbase pays its own address, 1 % to the pool's.
    ...(solo && { solo: { feeBasisPoints: 100, feeAddress: BENCH_ADDRESS } }),
    template: benchTemplate(txids, height, true),
    params: LITECOIN_REGTEST,
    chain: BENCH_CHAIN,
    payouts: [{ address: BENCH_ADDRESS }],
    extranonce1Size: EXTRANONCE1_SIZE,
    extranonce2Size: EXTRANONCE2_SIZE,
    epoch: 1,
    jobId,
    jmId: 'bench',
    cleanJobs: true,
  }).job;
}

let plainJob: () => void = () => {};
let redis: RedisClient | null = null;
let server: StratumServer | null = null;
let submitServer: StratumServer | null = null;
const jobs = new PushedJobs();
/**
 * The server's accepted sockets (from node's `net.server.socket` channel), for the fan-out
 * baseline; tracked only until `forgetSockets`, so that later runs (the handshakes) do not
 * measure a server whose heap holds every socket it ever accepted.
 */
const serverSockets = new Set<Socket>();
let trackSockets = true;

async function start(p: ServerStartParams): Promise<ServerStarted> {
  const txids = Array.from({ length: p.txCount }, () => randomBytes(32).toString('hex'));
  // Built before anything is timed: the bench times the server, not the job builder.
  const roundJobs: Job[] = [];
  const rawLines: Buffer[] = [];
  const soloJobs: Job[] = [];
  const soloRawLines: Buffer[] = [];
  const prepare = {
    params: LITECOIN_REGTEST,
    extranonce1Size: EXTRANONCE1_SIZE,
    extranonce2Size: EXTRANONCE2_SIZE,
    payoutScript: (address: string) => addressToScript(address, LITECOIN_REGTEST),
  };
  const soloAddress = p.soloAddresses[0] ?? BENCH_ADDRESS;
  for (let round = 0; round <= p.rounds; round++) {
    const ids = fanoutIds(round);
    roundJobs[round] = makeJob(txids, ids.job, 1000 + round);
    rawLines[round] = prepareJob(makeJob(txids, ids.raw, 1000 + round), prepare).notifyLine;
    soloJobs[round] = makeJob(txids, ids.solo, 2000 + round, true);
    // The baseline writes one address's line to every session: the same bytes, serialised once.
    soloRawLines[round] = prepareJob(
      makeJob(txids, ids.soloRaw, 2000 + round, true),
      prepare,
    ).solo!.notifyLine(soloAddress, true);
  }
  jobs.push(makeJob(txids, 'first', 999));
  // After the SOLO rounds: a pool-coinbase job again, so the later measures are as before.
  plainJob = () => jobs.push(makeJob(txids, 'plain', 3000));

  redis = connectRedis(p.redisUrl, 'bench-stratum');
  server = await createStratumServer({
    id: 'bench-stratum',
    chain: BENCH_CHAIN,
    params: LITECOIN_REGTEST,
    host: '127.0.0.1',
    port: 0,
    redis,
    keys: createKeyBuilder({ prefix: p.keyPrefix }),
    jobs,
    blockSink: { submitBlock: async () => ({ accepted: false, hash: '', reason: 'bench' }) },
    spoolDir: p.spoolDir,
    extranonce1Size: EXTRANONCE1_SIZE,
    extranonce2Size: EXTRANONCE2_SIZE,
    // Every bench miner connects from 127.0.0.1.
    limits: { maxConnectionsPerIp: 0 },
    // Idle sessions keep their difficulty: each new job is one notify line, nothing else.
    vardiff: { enabled: false },
  });
  await server.start();
  const port = server.port;
  // The stratum server's own sockets, for the bare-loop baseline. Kept cheap, since it runs in
  // the process being measured: the listening server is recognised by identity (reading
  // localPort is a getsockname syscall per connection), and closed sockets are pruned when a
  // baseline round runs rather than with a close listener on each.
  let stratumListener: unknown = null;
  subscribe('net.server.socket', (message) => {
    if (!trackSockets) return;
    const socket = (message as { socket: Socket & { server?: unknown } }).socket;
    if (stratumListener === null) {
      if (socket.localPort !== port) return;
      stratumListener = socket.server ?? null;
    } else if (socket.server !== stratumListener) return;
    serverSockets.add(socket);
  });

  const control = createServer((socket) => {
    socket.setNoDelay(true);
    createInterface({ input: socket }).on('line', (line) => {
      const [what, n] = line.split(' ');
      const round = Number(n);
      if (what === 'job') {
        jobs.push(roundJobs[round]!);
      } else if (what === 'solo') {
        jobs.push(soloJobs[round]!);
      } else if (what === 'raw' || what === 'soloraw') {
        const buffer = (what === 'raw' ? rawLines : soloRawLines)[round]!;
        for (const s of serverSockets) {
          if (s.destroyed) serverSockets.delete(s);
          else s.write(buffer);
        }
      }
    });
  });
  control.listen(0, '127.0.0.1');
  await once(control, 'listening');
  control.unref();
  const controlPort = (control.address() as { port: number }).port;
  // The line a round's job becomes (the server forces clean_jobs on a new prevhash; these are clean).
  const notifyBytes = prepareJob(roundJobs[1]!, prepare).notifyLine.length;
  if (notifyBytes !== rawLines[1]!.length) {
    throw new Error(`baseline line has ${rawLines[1]!.length} bytes, the notify ${notifyBytes}`);
  }
  const soloNotifyBytes = prepareJob(soloJobs[1]!, prepare).solo!.notifyLine(soloAddress, true).length;
  if (soloNotifyBytes !== soloRawLines[1]!.length) {
    throw new Error(`SOLO baseline line has ${soloRawLines[1]!.length} bytes, the notify ${soloNotifyBytes}`);
  }
  return { port, controlPort, notifyBytes, soloNotifyBytes };
}

/**
 * A second stratum server in this process for `stratum.submits_per_s`: share difficulty so low
 * that every submitted share is accepted (and spooled), on a job whose network target no
 * share meets (no block submission per share), in a spool directory of its own.
 */
async function startSubmit(p: SubmitServerParams): Promise<SubmitServerStarted> {
  const feed = new PushedJobs();
  const txids = Array.from({ length: p.txCount }, () => randomBytes(32).toString('hex'));
  feed.push(
    buildJob({
      template: benchTemplate(txids, 5000, false),
      params: LITECOIN_REGTEST,
      chain: BENCH_CHAIN,
      payouts: [{ address: BENCH_ADDRESS }],
      extranonce1Size: EXTRANONCE1_SIZE,
      extranonce2Size: EXTRANONCE2_SIZE,
      epoch: 1,
      jobId: 'submit',
      jmId: 'bench',
      cleanJobs: true,
    }).job,
  );
  submitServer = await createStratumServer({
    id: 'bench-stratum-submit',
    chain: BENCH_CHAIN,
    params: LITECOIN_REGTEST,
    host: '127.0.0.1',
    port: 0,
    redis: redis!,
    keys: createKeyBuilder({ prefix: p.keyPrefix }),
    jobs: feed,
    blockSink: { submitBlock: async () => ({ accepted: false, hash: '', reason: 'bench' }) },
    spoolDir: p.spoolDir,
    extranonce1Size: EXTRANONCE1_SIZE,
    extranonce2Size: EXTRANONCE2_SIZE,
    limits: { maxConnectionsPerIp: 0 },
    vardiff: { enabled: false, initialDifficulty: SUBMIT_DIFFICULTY, minDifficulty: SUBMIT_DIFFICULTY },
  });
  await submitServer.start();
  return { port: submitServer.port, extranonce2Size: EXTRANONCE2_SIZE };
}

/** Every scrypt hash meets a share target this low. */
const SUBMIT_DIFFICULTY = 1e-12;

/**
 * The baseline of `stratum.handshakes_per_s`: a bare Node server with the stratum server's
 * socket options that, per connection, reads up to the second line and writes one canned
 * reply as long as what the stratum server writes to a handshake (subscribe reply,
 * set_difficulty, the first job, authorize reply), then closes when the miner does. What
 * node:net alone costs per handshake on this machine; everything above it is ours.
 */
async function bareListen(): Promise<number> {
  const prepared = prepareJob(jobs.current()!, {
    params: LITECOIN_REGTEST,
    extranonce1Size: EXTRANONCE1_SIZE,
    extranonce2Size: EXTRANONCE2_SIZE,
  });
  const reply = Buffer.concat([
    Buffer.from(
      `{"id":1,"result":[[["mining.set_difficulty","0123456789abcdef"],["mining.notify","0123456789abcdef"]],"00010203",${EXTRANONCE2_SIZE}],"error":null}\n`,
    ),
    Buffer.from('{"id":null,"method":"mining.set_difficulty","params":[1]}\n'),
    prepared.notifyLineClean,
    Buffer.from('{"id":2,"result":true,"error":null}\n'),
  ]);
  const bare = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }, (socket) => {
    void socket.remoteAddress; // the stratum server reads it for its per-address limits
    let lines = 0;
    socket.on('data', (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
        if (++lines === 2) socket.write(reply);
      }
    });
    socket.on('error', () => {});
  });
  bare.listen(0, '127.0.0.1');
  await once(bare, 'listening');
  bare.unref();
  return (bare.address() as { port: number }).port;
}

/** RSS after a full collection, so garbage does not count as memory held. */
function rss(): number {
  if (!globalThis.gc) throw new Error('stratum-server-child needs --expose-gc');
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().rss;
}

/** Resolves once the server holds at most `count` connections (closes are seen asynchronously). */
async function settle(p: { count: number }): Promise<void> {
  const s = server!;
  while (s.stats().connections > p.count) await once(s, 'disconnect');
}

serveParent(
  {
    start,
    bareListen,
    plainJob: () => plainJob(),
    rss,
    settle,
    forgetSockets: () => {
      trackSockets = false;
      serverSockets.clear();
    },
    stats: () => server!.stats(),
    startSubmit,
    submitStats: () => submitServer!.stats(),
    /** CPU time of the whole process (all threads, user + system), microseconds. */
    cpu: () => {
      const { user, system } = process.cpuUsage();
      return user + system;
    },
  },
  async () => {
    await submitServer?.close();
    await server?.close();
    redis?.disconnect();
  },
);
