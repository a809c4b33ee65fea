// The miner side of the `stratum` bench: thousands of bare stratum sockets in a process of
// their own (they would not fit the server's file descriptors, and must not count in its
// RSS). Opens idle sessions, triggers fan-out rounds on the server's control port and
// timestamps every arrival on this one clock, and runs the handshake churn.
import { once } from 'node:events';
import { type Socket, connect } from 'node:net';
import { serveParent } from './child-ipc.js';
import {
  BENCH_ADDRESS,
  type FanoutParams,
  type HandshakeParams,
  type HandshakeResult,
  type OpenParams,
  type PacedParams,
  type PacedResult,
  type SubmitParams,
  type SubmitResult,
  fanoutIds,
  notifyMarker,
} from './stratum-bench-shared.js';

const AUTHORIZE_ID = 2;
/** A round that takes this long lost sessions on the way: fail, do not hang. */
const ROUND_TIMEOUT_MS = 30_000;

const SUBSCRIBE = `{"id":1,"method":"mining.subscribe","params":["hashwire-bench/1"]}\n`;

function handshakeLines(worker: string, address = BENCH_ADDRESS): string {
  const authorize = `{"id":${AUTHORIZE_ID},"method":"mining.authorize","params":["${address}.${worker}","x"]}\n`;
  return SUBSCRIBE + authorize;
}

/** Calls `onLine` with each complete line the socket receives and the time its chunk arrived. */
function readLines(socket: Socket, onLine: (line: string, at: number) => void): void {
  let partial = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    const at = performance.now();
    partial += chunk;
    let nl = partial.indexOf('\n');
    while (nl !== -1) {
      onLine(partial.slice(0, nl), at);
      partial = partial.slice(nl + 1);
      nl = partial.indexOf('\n');
    }
  });
}

const isAuthorizeReply = (line: string) => line.startsWith(`{"id":${AUTHORIZE_ID},`);

function checkAuthorized(line: string): void {
  if (!line.includes('"result":true')) throw new Error(`authorize refused: ${line}`);
}

interface Watch {
  marker: string;
  remaining: number;
  last: number;
  done: () => void;
}

const sessions: Socket[] = [];
let watch: Watch | null = null;
let control: Socket | null = null;
let failure: Error | null = null;

/**
 * One idle session: subscribe + authorize, resolved once the server has sent its first job
 * (the session is then what a quiet miner is). Afterwards it only watches fan-out rounds.
 */
function openSession(port: number, worker: string, address?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sessions.push(socket);
    let authorized = false;
    let settled = false;
    let seenRound = '';
    let seenClean = 0;
    socket.on('error', (error) => {
      failure ??= error;
      if (!settled) reject(error);
    });
    socket.on('close', () => {
      if (!settled) reject(new Error(`session ${worker} closed by the server during its handshake`));
    });
    readLines(socket, (line, at) => {
      if (!settled) {
        if (isAuthorizeReply(line)) {
          checkAuthorized(line);
          authorized = true;
        } else if (authorized && line.includes('"mining.notify"')) {
          settled = true;
          resolve();
        }
        return;
      }
      const c = cleanWatch;
      if (c && seenClean !== cleanRound && line.includes('"mining.notify"') && line.endsWith(',true]}')) {
        seenClean = cleanRound;
        c.last = at;
        if (--c.remaining === 0) c.done();
      }
      const w = watch;
      if (w && seenRound !== w.marker && line.includes(w.marker)) {
        seenRound = w.marker;
        w.last = at;
        if (--w.remaining === 0) w.done();
      }
    });
    socket.write(handshakeLines(worker, address));
  });
}

async function open(p: OpenParams): Promise<{ sessions: number; ms: number }> {
  const start = performance.now();
  const first = sessions.length;
  let next = 0;
  const opener = async () => {
    while (next < p.sessions) {
      const i = first + next++;
      const address = p.addresses ? p.addresses[i % p.addresses.length] : p.address;
      await openSession(p.port, `idle${i}`, address);
    }
  };
  await Promise.all(Array.from({ length: Math.min(p.concurrency, p.sessions) }, opener));
  return { sessions: sessions.length, ms: performance.now() - start };
}

/**
 * Block rounds driven by the parent (the jobs suite): `armClean` before the block is mined,
 * `collectClean` resolves with the epoch time (ms) at which the last session held the first
 * clean `mining.notify` after arming.
 */
let cleanRound = 0;
let cleanWatch: Watch | null = null;
let cleanDone: Promise<void> = Promise.resolve();

async function armClean(): Promise<void> {
  cleanRound++;
  const round: Watch = { marker: '', remaining: sessions.length, last: 0, done: () => {} };
  cleanDone = new Promise<void>((resolve) => {
    round.done = resolve;
  });
  cleanWatch = round;
}

async function collectClean(): Promise<number> {
  const round = cleanWatch;
  if (!round) throw new Error('collectClean without armClean');
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      cleanDone,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(`${round.remaining} sessions without a clean notify after ${ROUND_TIMEOUT_MS} ms`),
            ),
          ROUND_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    cleanWatch = null;
  }
  return performance.timeOrigin + round.last;
}

async function closeSessions(): Promise<void> {
  const closing = sessions.map((s) => (s.closed ? Promise.resolve() : once(s, 'close')));
  for (const s of sessions) s.destroy();
  sessions.length = 0;
  await Promise.all(closing);
}

/**
 * One round: the job (or the baseline buffer) is triggered from here, and the round lasts
 * until the last session holds the whole line. Milliseconds on this process's clock.
 */
async function fanout(p: FanoutParams): Promise<number> {
  if (failure) throw failure;
  if (!control) {
    control = connect(p.controlPort, '127.0.0.1');
    control.setNoDelay(true);
    await once(control, 'connect');
  }
  const ids = fanoutIds(p.round);
  const round: Watch = {
    marker: notifyMarker({ job: ids.job, raw: ids.raw, solo: ids.solo, soloraw: ids.soloRaw }[p.kind]),
    remaining: sessions.length,
    last: 0,
    done: () => {},
  };
  const done = new Promise<void>((resolve) => {
    round.done = resolve;
  });
  watch = round;
  const start = performance.now();
  control.write(`${p.kind} ${p.round}\n`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `${p.kind} round ${p.round}: ${round.remaining} sessions still waiting after ${ROUND_TIMEOUT_MS} ms`,
          ),
        ),
      ROUND_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
    watch = null;
  }
  return round.last - start;
}

/**
 * Handshake churn: `concurrency` clients, each connecting, subscribing and authorizing,
 * closing at the authorize reply, and starting over. Counts the handshakes completed in
 * `seconds` after a warm-up.
 */
async function handshakes(p: HandshakeParams): Promise<HandshakeResult> {
  let counting = false;
  let count = 0;
  let stop = false;
  let seq = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const socket = connect(p.port, '127.0.0.1');
      socket.on('error', reject);
      socket.on('close', () => reject(new Error('closed by the server during the handshake')));
      readLines(socket, (line) => {
        if (!isAuthorizeReply(line)) return;
        checkAuthorized(line);
        if (counting) count++;
        socket.removeAllListeners('close');
        socket.removeAllListeners('error');
        socket.on('error', () => {});
        socket.destroy();
        resolve();
      });
      socket.write(handshakeLines(`hs${seq++}`));
    });
  const client = async () => {
    while (!stop) await one();
  };
  const clients = Promise.all(Array.from({ length: p.concurrency }, client));
  const timed = (async () => {
    await new Promise((resolve) => setTimeout(resolve, p.warmupSeconds * 1000));
    counting = true;
    const start = performance.now();
    await new Promise((resolve) => setTimeout(resolve, p.seconds * 1000));
    counting = false;
    stop = true;
    return (performance.now() - start) / 1000;
  })();
  // A failed handshake ends the run at once rather than when the timer fires.
  const [seconds] = await Promise.all([timed, clients]);
  return { handshakes: count, seconds };
}

/** What a bench miner knows before it can submit: its authorization, then its first job. */
interface MinerStart {
  authorized: boolean;
  job: { id: string; ntime: string } | null;
}

/**
 * Takes a line read before the miner's first job: the authorize reply (checked), then the
 * first `mining.notify`. True when this line brought the first job; false for the lines before.
 */
function tookFirstJob(line: string, start: MinerStart): boolean {
  if (!start.authorized) {
    if (isAuthorizeReply(line)) {
      checkAuthorized(line);
      start.authorized = true;
    }
    return false;
  }
  if (start.job !== null || !line.includes('"mining.notify"')) return false;
  const params = (JSON.parse(line) as { params: string[] }).params;
  start.job = { id: params[0]!, ntime: params[7]! };
  return true;
}

/** The `mining.submit` line of submit `n` (request id n + 10) of miner `index`, on `job`. */
function submitLine(
  worker: string,
  job: { id: string; ntime: string },
  index: number,
  n: number,
  extranonce2Size: number,
): string {
  const en2 = (index * 2 ** 32 + n).toString(16).padStart(extranonce2Size * 2, '0');
  const nonce = (n % 2 ** 32).toString(16).padStart(8, '0');
  return `{"id":${n + 10},"method":"mining.submit","params":["${worker}","${job.id}","${en2}","${job.ntime}","${nonce}"]}\n`;
}

/**
 * Share load: `connections` miners, each subscribing, authorizing, reading its first job, then
 * keeping `inFlight` `mining.submit`s outstanding (a new one per answer, each with its own
 * extranonce2), until `warmupSeconds` + `seconds` have passed since every miner had its first
 * job. Counts the answers `true` in the measured `seconds`, and every other answer.
 */
async function submits(p: SubmitParams & { extranonce2Size: number }): Promise<SubmitResult> {
  let counting = false;
  let stop = false;
  let accepted = 0;
  let refused = 0;
  let firstRefusal: string | null = null;
  const sockets: Socket[] = [];
  const atStop: (() => void)[] = [];
  // The warmup starts once every miner has its first job, not when the first connects: on a
  // busy machine 100 handshakes took longer than warmup and run together, and the run ended
  // with a miner that had never submitted ('miner 80 got no job', the cli bench test at load 24).
  let withJob = 0;
  let allHaveJobs: () => void = () => {};
  let noJobs: NodeJS.Timeout | undefined;
  const firstJobs = new Promise<void>((resolve, reject) => {
    allHaveJobs = resolve;
    // Only a server that sends no jobs is this slow; the error says so instead of hanging.
    noJobs = setTimeout(
      () => reject(new Error(`${p.connections - withJob} of ${p.connections} miners got no job in 60 s`)),
      60_000,
    );
  }).finally(() => clearTimeout(noJobs));
  const miner = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const socket = connect(p.port, '127.0.0.1');
      sockets.push(socket);
      const worker = `${BENCH_ADDRESS}.sub${index}`;
      const start: MinerStart = { authorized: false, job: null };
      let next = 0;
      let outstanding = 0;
      const send = () => {
        outstanding++;
        socket.write(submitLine(worker, start.job!, index, next++, p.extranonce2Size));
      };
      socket.on('error', reject);
      socket.on('close', () => {
        if (!stop) reject(new Error(`miner ${index} closed by the server`));
      });
      readLines(socket, (line) => {
        if (start.job === null) {
          if (tookFirstJob(line, start)) {
            if (++withJob === p.connections) allHaveJobs();
            for (let i = 0; i < p.inFlight; i++) send();
          }
          return;
        }
        if (!line.startsWith('{"id":') || line.startsWith('{"id":null')) return;
        outstanding--;
        if (line.includes('"result":true')) {
          if (counting) accepted++;
        } else {
          refused++;
          firstRefusal ??= line;
        }
        if (!stop) send();
        else if (outstanding === 0) resolve();
      });
      // The run stops only after every miner had its first job.
      atStop.push(() => {
        if (outstanding === 0) resolve();
      });
      socket.write(handshakeLines(`sub${index}`));
    });
  const miners = Promise.all(Array.from({ length: p.connections }, (_, i) => miner(i)));
  const timed = (async () => {
    await firstJobs;
    await new Promise((resolve) => setTimeout(resolve, p.warmupSeconds * 1000));
    counting = true;
    const start = performance.now();
    await new Promise((resolve) => setTimeout(resolve, p.seconds * 1000));
    counting = false;
    stop = true;
    for (const check of atStop) check();
    return (performance.now() - start) / 1000;
  })();
  try {
    const [seconds] = await Promise.all([timed, miners]);
    return { accepted, refused, firstRefusal, seconds };
  } finally {
    clearTimeout(noJobs);
    for (const socket of sockets) {
      socket.removeAllListeners('close');
      socket.on('error', () => {});
      socket.destroy();
    }
  }
}

/** Epoch milliseconds with sub-millisecond precision: comparable with the parent's clock. */
const epochMs = () => performance.timeOrigin + performance.now();

interface PacedLoad {
  sockets: Socket[];
  timers: NodeJS.Timeout[];
  result: PacedResult;
  outstanding: number;
  stopping: boolean;
  onIdle: (() => void) | null;
}

let paced: PacedLoad | null = null;

/**
 * Open-loop share load for `stratum.upgrade_stall_p99_ms`: `connections` miners subscribe,
 * authorize and read their first job, then each sends one `mining.submit` every `intervalMs`
 * (staggered over the interval), whether or not the last was answered, recording when each
 * was sent and answered. Resolves once every miner is submitting; `pacedStop` ends it.
 */
async function pacedStart(p: PacedParams): Promise<void> {
  if (paced) throw new Error('a paced load is running already');
  const load: PacedLoad = {
    sockets: [],
    timers: [],
    result: { sentAt: [], answeredAt: [], refused: 0, firstRefusal: null, closed: 0, unanswered: 0 },
    outstanding: 0,
    stopping: false,
    onIdle: null,
  };
  paced = load;
  const miner = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const socket = connect(p.port, '127.0.0.1');
      load.sockets.push(socket);
      const worker = `${BENCH_ADDRESS}.paced${index}`;
      const sent = new Map<number, number>();
      const start: MinerStart = { authorized: false, job: null };
      let next = 0;
      const send = () => {
        const n = next++;
        sent.set(n + 10, epochMs());
        load.outstanding++;
        socket.write(submitLine(worker, start.job!, index, n, p.extranonce2Size));
      };
      socket.on('error', (error) => {
        if (start.job === null) reject(error);
      });
      socket.on('close', () => {
        if (start.job === null)
          reject(new Error(`paced miner ${index} closed by the server before its first job`));
        else if (!load.stopping) load.result.closed++;
      });
      readLines(socket, (line, at) => {
        if (start.job === null) {
          if (!tookFirstJob(line, start)) return;
          // Staggered: the miners' submits spread over the interval rather than arriving in bursts.
          const first = setTimeout(
            () => {
              if (load.stopping) return;
              send();
              load.timers.push(
                setInterval(() => {
                  if (!load.stopping) send();
                }, p.intervalMs),
              );
            },
            (index / p.connections) * p.intervalMs,
          );
          load.timers.push(first);
          resolve();
          return;
        }
        if (!line.startsWith('{"id":') || line.startsWith('{"id":null')) return;
        const id = Number(line.slice(6, line.indexOf(',')));
        const sentAt = sent.get(id);
        if (sentAt === undefined) return;
        sent.delete(id);
        load.outstanding--;
        if (line.includes('"result":true')) {
          load.result.sentAt.push(sentAt);
          load.result.answeredAt.push(performance.timeOrigin + at);
        } else {
          load.result.refused++;
          load.result.firstRefusal ??= line;
        }
        if (load.stopping && load.outstanding === 0) load.onIdle?.();
      });
      socket.write(handshakeLines(`paced${index}`));
    });
  // Opened a few hundred at a time, as the idle sessions are.
  let nextMiner = 0;
  const opener = async () => {
    while (nextMiner < p.connections) await miner(nextMiner++);
  };
  await Promise.all(Array.from({ length: Math.min(200, p.connections) }, opener));
}

/**
 * Stops sending, waits up to `graceMs` for the answers still due, closes the miners and
 * returns what was recorded.
 */
async function pacedStop(p: { graceMs: number }): Promise<PacedResult> {
  const load = paced;
  if (!load) throw new Error('no paced load is running');
  load.stopping = true;
  for (const timer of load.timers) clearTimeout(timer);
  if (load.outstanding > 0) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        load.onIdle = resolve;
      }),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, p.graceMs);
      }),
    ]);
    clearTimeout(timer);
  }
  load.result.unanswered = load.outstanding;
  for (const socket of load.sockets) {
    socket.on('error', () => {});
    socket.destroy();
  }
  paced = null;
  return load.result;
}

serveParent(
  { open, closeSessions, fanout, handshakes, armClean, collectClean, submits, pacedStart, pacedStop },
  async () => {
    control?.destroy();
    await closeSessions();
    if (paced) await pacedStop({ graceMs: 0 });
  },
);
