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
    while (next < p.sessions) await openSession(p.port, `idle${first + next++}`, p.address);
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
    marker: notifyMarker(p.kind === 'job' ? ids.job : ids.raw),
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

/**
 * Share load: `connections` miners, each subscribing, authorizing, reading its first job, then
 * keeping `inFlight` `mining.submit`s outstanding (a new one per answer, each with its own
 * extranonce2), until `warmupSeconds` + `seconds` have passed. Counts the answers `true` in the
 * measured `seconds`, and every other answer.
 */
async function submits(p: SubmitParams & { extranonce2Size: number }): Promise<SubmitResult> {
  let counting = false;
  let stop = false;
  let accepted = 0;
  let refused = 0;
  let firstRefusal: string | null = null;
  const sockets: Socket[] = [];
  const atStop: (() => void)[] = [];
  const miner = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const socket = connect(p.port, '127.0.0.1');
      sockets.push(socket);
      const worker = `${BENCH_ADDRESS}.sub${index}`;
      let job: { id: string; ntime: string } | null = null;
      let authorized = false;
      let next = 0;
      let outstanding = 0;
      const send = () => {
        const n = next++;
        const en2 = (index * 2 ** 32 + n).toString(16).padStart(p.extranonce2Size * 2, '0');
        const nonce = (n % 2 ** 32).toString(16).padStart(8, '0');
        outstanding++;
        socket.write(
          `{"id":${n + 10},"method":"mining.submit","params":["${worker}","${job!.id}","${en2}","${job!.ntime}","${nonce}"]}\n`,
        );
      };
      socket.on('error', reject);
      socket.on('close', () => {
        if (!stop) reject(new Error(`miner ${index} closed by the server`));
      });
      readLines(socket, (line) => {
        if (!authorized) {
          if (isAuthorizeReply(line)) {
            checkAuthorized(line);
            authorized = true;
          }
          return;
        }
        if (job === null) {
          if (!line.includes('"mining.notify"')) return;
          const params = (JSON.parse(line) as { params: string[] }).params;
          job = { id: params[0]!, ntime: params[7]! };
          for (let i = 0; i < p.inFlight; i++) send();
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
      atStop.push(() => {
        if (job === null) reject(new Error(`miner ${index} got no job`));
        else if (outstanding === 0) resolve();
      });
      socket.write(handshakeLines(`sub${index}`));
    });
  const miners = Promise.all(Array.from({ length: p.connections }, (_, i) => miner(i)));
  const timed = (async () => {
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
    for (const socket of sockets) {
      socket.removeAllListeners('close');
      socket.on('error', () => {});
      socket.destroy();
    }
  }
}

serveParent({ open, closeSessions, fanout, handshakes, armClean, collectClean, submits }, async () => {
  control?.destroy();
  await closeSessions();
});
