import { once } from 'node:events';
import { type Server, type Socket, connect, createServer } from 'node:net';
import path from 'node:path';
import { type HaproxyRenderInput, HaproxyRuntime, type ServerState, renderHaproxy } from '@hashwire/confgen';
import type { KeyBuilder } from '@hashwire/protocol';
import { type RedisClient, type ServiceRegistration, registerService } from '@hashwire/registry';
import { type AgentCheck, type AgentWord, parseProxyHeader, startAgentCheck } from '@hashwire/stratum';
import { type HaproxyInstance, getFreePort, makeTempDir, startHaproxy, waitFor } from '@hashwire/testkit';

/** Fast checks, so HAProxy notices a change within a few hundred milliseconds. */
export const FAST_CHECKS = { intervalMs: 100, rise: 1, fall: 1, agentIntervalMs: 100 };

/**
 * A stand-in stratum server: a real TCP listener behind HAProxy's PROXY v2 (health checks send
 * a LOCAL header and are closed), that greets each miner with its id and answers every line
 * with `<id>:<line>`; a real agent-check listener; registered like a stratum server.
 */
export class StandIn {
  word: AgentWord = 'up';
  readonly miners = new Set<Socket>();
  /** The PROXY v2 unique-id TLV of every miner connection. */
  readonly uniqueIds: string[] = [];
  registration!: ServiceRegistration;
  agent!: AgentCheck;
  port = 0;
  private readonly server: Server;

  private constructor(readonly id: string) {
    this.server = createServer((socket) => this.accept(socket));
  }

  static async start(options: { redis: RedisClient; keys: KeyBuilder; id: string; chain?: string }) {
    const s = new StandIn(options.id);
    s.server.listen(0, '127.0.0.1');
    await once(s.server, 'listening');
    s.port = (s.server.address() as { port: number }).port;
    s.agent = await startAgentCheck({ host: '127.0.0.1', status: () => s.word });
    s.registration = await registerService({
      redis: options.redis,
      keys: options.keys,
      kind: 'stratum',
      id: options.id,
      chain: options.chain ?? 'ltc',
      stratum: `127.0.0.1:${s.port}`,
      agent: `127.0.0.1:${s.agent.port}`,
    });
    return s;
  }

  private accept(socket: Socket): void {
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    const onHeader = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parseProxyHeader(buffer);
      if (parsed.status === 'need-more') return;
      socket.off('data', onHeader);
      if (parsed.header.command === 'local') {
        socket.destroy();
        return;
      }
      this.uniqueIds.push(parsed.header.uniqueId ?? '');
      this.miners.add(socket);
      socket.on('close', () => this.miners.delete(socket));
      socket.write(`hello ${this.id}\n`);
      let text = buffer.subarray(parsed.consumed).toString();
      socket.on('data', (more: Buffer) => {
        text += more.toString();
        for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n')) {
          socket.write(`${this.id}:${text.slice(0, end)}\n`);
          text = text.slice(end + 1);
        }
      });
    };
    socket.on('data', onHeader);
  }

  /** Stops listening and answering the agent; connected miners are closed. */
  async stop(): Promise<void> {
    for (const m of this.miners) m.destroy();
    await this.registration.close().catch(() => {});
    await this.agent.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A client through HAProxy: knows which server it landed on, and checks that bytes still flow. */
export class Miner {
  private lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  closed = false;
  server = '';

  private constructor(readonly socket: Socket) {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n')) {
        this.lines.push(text.slice(0, end));
        text = text.slice(end + 1);
      }
      this.deliver();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.deliver();
    });
  }

  private deliver(): void {
    if (!this.waiting) return;
    const line = this.lines.shift();
    if (line !== undefined) this.waiting(line);
    else if (this.closed) this.waiting('(closed)');
  }

  private next(): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = (line) => {
        this.waiting = null;
        resolve(line);
      };
      this.deliver();
    });
  }

  /** Connects from `localAddress` (any 127.x.y.z: `balance source` hashes on it) and reads the greeting. */
  static async connect(port: number, localAddress = '127.0.0.1'): Promise<Miner> {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    await once(socket, 'connect');
    const miner = new Miner(socket);
    const hello = await miner.next();
    const match = /^hello (\S+)$/.exec(hello);
    if (!match) throw new Error(`no greeting through HAProxy (got ${hello})`);
    miner.server = match[1] as string;
    return miner;
  }

  /** Sends a line and returns the answer: `<server id>:<line>` while the connection is intact. */
  async ping(text: string): Promise<string> {
    this.socket.write(`${text}\n`);
    return this.next();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** HAProxy from the pool's template with fast checks, on a free port, and its runtime client. */
export async function startFront(
  input: Partial<HaproxyRenderInput> = {},
): Promise<{ haproxy: HaproxyInstance; runtime: HaproxyRuntime; port: number; config: string }> {
  const dir = await makeTempDir('confgen-front');
  const port = await getFreePort();
  const config = renderHaproxy({
    statsSocket: path.join(dir, 'admin.sock'),
    frontend: { bind: '127.0.0.1', port },
    backend: { check: FAST_CHECKS },
    ...input,
  });
  const haproxy = await startHaproxy(config);
  return { haproxy, runtime: new HaproxyRuntime({ socketPath: haproxy.statsSocket }), port, config };
}

/** Waits until server `name` of the backend matches `check` (HAProxy state is only known by asking). */
export function waitServer(
  runtime: HaproxyRuntime,
  name: string,
  check: (state: ServerState | undefined) => boolean,
  what: string,
): Promise<true> {
  return waitFor(async () => check((await runtime.serversState('stratum')).find((s) => s.name === name)), {
    what: `${name}: ${what}`,
    timeoutMs: 10_000,
    intervalMs: 25,
  });
}

/** Up in HAProxy: taking new connections. */
export const isLive = (s: ServerState | undefined) => s?.operational === 'running' && !s.maint && !s.drain;
