// Prototype measurement for issue 20 (upgrading stratum without disconnecting miners): the two
// known designs against the current one, reduced to what decides between them — the cost a
// request pays in steady state and the stall a session sees at the switch. Not a suite: run
// `node bench/dist/upgrade-designs.js` and read the JSON it prints.
//
// - direct: one process owns the socket and answers each JSON line (the current design).
// - edge: a process owning the sockets frames lines and forwards them over a Unix socket to a
//   worker process that answers; the edge writes the answer back.
// - handover: a master process holds the listener; a worker answers directly; at the switch a
//   second worker is started, the first stops reading each socket, and passes it (with what it
//   read of a half line) through the master to the second.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const REPLY_RESULT = [true];

/** Splits a stream into lines; keeps the unfinished tail. */
class Lines {
  tail = '';
  push(chunk: string, onLine: (line: string) => void): void {
    const text = this.tail + chunk;
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      onLine(text.slice(start, end));
      start = end + 1;
    }
    this.tail = text.slice(start);
  }
}

function answer(line: string): string {
  const request = JSON.parse(line) as { id: number; params: unknown[] };
  return `${JSON.stringify({ id: request.id, result: REPLY_RESULT, error: null, echo: request.params })}\n`;
}

/** Serves one socket directly; `tail` is a half line read by a previous owner. */
function serveDirect(socket: Socket, live: Set<Socket>, tail = ''): void {
  const lines = new Lines();
  lines.tail = tail;
  live.add(socket);
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => lines.push(chunk, (line) => socket.write(answer(line))));
  socket.on('close', () => live.delete(socket));
  socket.on('error', () => {});
  (socket as unknown as { lines: Lines }).lines = lines;
}

function roleDirect(): void {
  const live = new Set<Socket>();
  const server = createServer({ noDelay: true }, (socket) => serveDirect(socket, live));
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
}

function roleEdge(): void {
  const sockPath = join(mkdtempSync(join(tmpdir(), 'hw-edge-')), 'worker.sock');
  const conns = new Map<number, Socket>();
  let seq = 0;
  let worker: Socket | null = null;
  const workerLines = new Lines();
  const ipc = createServer((w) => {
    worker = w;
    w.setEncoding('utf8');
    w.on('data', (chunk: string) =>
      workerLines.push(chunk, (line) => {
        const space = line.indexOf(' ');
        conns.get(Number(line.slice(0, space)))?.write(`${line.slice(space + 1)}\n`);
      }),
    );
  });
  ipc.listen(sockPath, () => {
    const child = fork(SELF, ['worker', sockPath]);
    child.once('message', () => {
      const server = createServer({ noDelay: true }, (socket) => {
        const id = ++seq;
        conns.set(id, socket);
        const lines = new Lines();
        socket.setEncoding('utf8');
        // Lines of one read go to the worker in one write.
        socket.on('data', (chunk: string) => {
          let out = '';
          lines.push(chunk, (line) => {
            out += `${id} ${line}\n`;
          });
          if (out) worker?.write(out);
        });
        socket.on('close', () => conns.delete(id));
        socket.on('error', () => {});
      });
      server.listen(0, '127.0.0.1', () =>
        process.send?.({ port: (server.address() as { port: number }).port }),
      );
    });
  });
}

function roleWorker(sockPath: string): void {
  const edge = connect(sockPath, () => process.send?.({ ready: true }));
  const lines = new Lines();
  edge.on('error', () => process.exit(0));
  edge.on('close', () => process.exit(0));
  edge.setEncoding('utf8');
  edge.on('data', (chunk: string) => {
    let out = '';
    lines.push(chunk, (line) => {
      const space = line.indexOf(' ');
      out += `${line.slice(0, space)} ${answer(line.slice(space + 1))}`;
    });
    edge.write(out);
  });
}

/** The handover master: holds the listener, relays sockets from the old worker to the new. */
function roleMaster(): void {
  let current: ChildProcess;
  // The master accepts, without reading, and hands each new socket to the current worker.
  const listener: Server = createServer({ pauseOnConnect: true }, (socket) =>
    current.send({ tail: '' }, socket),
  );
  listener.listen(0, '127.0.0.1', () => {
    current = startHandoverWorker();
    current.once('message', () => process.send?.({ port: (listener.address() as { port: number }).port }));
    process.on('message', (msg: { upgrade?: boolean }) => {
      if (!msg.upgrade) return;
      const started = Date.now();
      const next = startHandoverWorker();
      next.once('message', () => {
        const switchStarted = Date.now();
        const startMs = switchStarted - started;
        const old = current;
        current = next;
        let moved = 0;
        old.on('message', (m: { tail?: string; wave?: boolean; done?: number }, socket?: Socket) => {
          if (socket) {
            // Received sockets start reading at once; stop before a byte can land here.
            (socket as unknown as { _handle: { readStop(): void } })._handle.readStop();
            next.send({ tail: m.tail }, socket);
            moved++;
          } else if (m.wave) {
            next.send({ wave: true });
          } else if (m.done !== undefined) {
            old.kill();
            process.send?.({ upgraded: true, moved, startMs, switchMs: Date.now() - switchStarted });
          }
        });
        // The new worker has taken a wave: the old one sends the next.
        next.on('message', (m: { waveTaken?: boolean }) => {
          if (m.waveTaken && current === next) old.send({ handOver: true });
        });
        old.send({ handOver: true });
      });
    });
  });
}

function startHandoverWorker(): ChildProcess {
  const child = fork(SELF, ['handover-worker']);
  child.send({ listen: true });
  return child;
}

function roleHandoverWorker(): void {
  const live = new Set<Socket>();
  const wave = Number(process.env.WAVE ?? 50);
  process.on(
    'message',
    (msg: { listen?: boolean; tail?: string; handOver?: boolean; wave?: boolean }, handle?: unknown) => {
      if (msg.wave) {
        process.send?.({ waveTaken: true });
      } else if (msg.listen) {
        process.send?.({ ready: true });
      } else if (msg.tail !== undefined && handle) {
        serveDirect(handle as Socket, live, msg.tail);
      } else if (msg.handOver) {
        // In waves: a session stalls only while its own wave moves, not while all of them do.
        let sent = 0;
        for (const socket of [...live].slice(0, wave)) {
          // At a line boundary of what was read: the unfinished tail travels with the socket.
          (socket as unknown as { _handle: { readStop(): void } })._handle.readStop();
          const tail = (socket as unknown as { lines: Lines }).lines.tail;
          socket.removeAllListeners('data');
          live.delete(socket);
          process.send?.({ tail }, socket as never, () => {});
          sent++;
        }
        process.send?.(live.size === 0 ? { done: sent } : { wave: true });
      }
    },
  );
}

// ---- the conductor ------------------------------------------------------------------

interface Client {
  socket: Socket;
  sentAt: number;
  worstMs: number;
  lastAnswerAt: number;
  closed: boolean;
}

async function openClients(port: number, n: number): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < n; i++) {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const client: Client = { socket, sentAt: 0, worstMs: 0, lastAnswerAt: 0, closed: false };
    socket.on('error', () => {});
    socket.on('close', () => {
      client.closed = true;
    });
    clients.push(client);
  }
  return clients;
}

/** Each client ping-pongs one request at a time; latencies recorded, for `ms`. */
async function pingPong(
  clients: Client[],
  ms: number,
  during?: () => Promise<unknown>,
): Promise<{ answers: number; p50: number; p99: number; worst: number; disconnects: number; stuck: number }> {
  const latencies: number[] = [];
  let running = true;
  let seq = 0;
  for (const client of clients) {
    const lines = new Lines();
    client.socket.setEncoding('utf8');
    client.socket.removeAllListeners('data');
    const send = () => {
      client.sentAt = performance.now();
      // Split in two writes: a half line is in flight at any moment of the switch.
      const line = JSON.stringify({
        id: ++seq,
        method: 'mining.submit',
        params: ['w', 'j', 'e2', 'nt', 'nn'],
      });
      client.socket.write(line.slice(0, 20));
      client.socket.write(`${line.slice(20)}\n`);
    };
    client.socket.on('data', (chunk: string) =>
      lines.push(chunk, () => {
        client.lastAnswerAt = performance.now();
        latencies.push(client.lastAnswerAt - client.sentAt);
        if (running) send();
      }),
    );
    send();
  }
  const started = performance.now();
  const extra = during ? await during() : undefined;
  const left = ms - (performance.now() - started);
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
  const stuckSince = performance.now() - 1000;
  running = false;
  void extra;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Number((latencies[Math.floor(q * (latencies.length - 1))] ?? 0).toFixed(3));
  return {
    answers: latencies.length,
    p50: at(0.5),
    p99: at(0.99),
    worst: Number((latencies.at(-1) ?? 0).toFixed(1)),
    disconnects: clients.filter((c) => c.closed).length,
    /** Clients without an answer in the last second: a request lost at the switch. */
    stuck: clients.filter((c) => c.lastAnswerAt < stuckSince).length,
  };
}

/** Connect, one request and its answer, close: `n` of them, `parallel` at a time; per second. */
async function handshakes(port: number, n: number, parallel: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = connect({ port, host: '127.0.0.1', noDelay: true });
      socket.on('error', () => resolve());
      socket.once('connect', () =>
        socket.write(`${JSON.stringify({ id: 1, method: 'mining.subscribe', params: ['x'] })}\n`),
      );
      socket.once('data', () => {
        socket.destroy();
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next++ < n) await one();
    }),
  );
  return Math.round(n / ((performance.now() - started) / 1000));
}

function start(role: string): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(SELF, [role]);
  return new Promise((resolve) =>
    child.once('message', (msg: { port: number }) => resolve({ child, port: msg.port })),
  );
}

async function conduct(): Promise<void> {
  const clientsN = Number(process.env.CLIENTS ?? 200);
  const ms = Number(process.env.MS ?? 3000);
  const out: Record<string, unknown> = { clients: clientsN, ms };
  for (const role of ['direct', 'edge', 'master']) {
    const { child, port } = await start(role);
    const handshakesPerS = await handshakes(port, Number(process.env.HANDSHAKES ?? 3000), 50);
    const clients = await openClients(port, clientsN);
    if (role === 'master') {
      const upgrades: unknown[] = [];
      const result = await pingPong(clients, ms, async () => {
        await new Promise((resolve) => setTimeout(resolve, ms / 3));
        for (let i = 0; i < 2; i++) {
          child.send({ upgrade: true });
          upgrades.push(await new Promise((resolve) => child.once('message', resolve)));
        }
      });
      out.handover = { handshakesPerS, ...result, upgrades };
    } else {
      out[role] = { handshakesPerS, ...(await pingPong(clients, ms)) };
    }
    for (const client of clients) client.socket.destroy();
    child.kill();
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  process.exit(0);
}

const role = process.argv[2];
if (role === 'direct') roleDirect();
else if (role === 'edge') roleEdge();
else if (role === 'worker') roleWorker(process.argv[3]!);
else if (role === 'master') roleMaster();
else if (role === 'handover-worker') roleHandoverWorker();
else void conduct();
