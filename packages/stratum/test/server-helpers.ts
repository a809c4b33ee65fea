import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BITCOIN_MAIN } from '@hashwire/chain';
import { type Job, type KeyBuilder, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import {
  type BlockSink,
  type JobSource,
  type StratumServer,
  type StratumServerOptions,
  type SubmitBlockRequest,
  createStratumServer,
} from '@hashwire/stratum';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { makeJob } from './share-fixtures.js';

/** A payout address valid on bitcoin main (the chain of the fixture jobs). */
export const ADDRESS = 'bc1qxhmdufsvnuaaaer4ynz88fspdsxq2h9e9cetdj';
export const USER = `${ADDRESS}.rig1`;
/** Every hash meets this share difficulty. */
export const ANY_DIFF = 1e-12;
/** The chain every harness server serves (its sessions are `sess:{btc-main}:<id>`). */
export const CHAIN = 'btc-main';

/** Jobs pushed by the test, as the jobmanager feed would. */
export class TestJobSource implements JobSource {
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

/** Records block submissions and answers them `accepted`. */
export class RecordingBlockSink implements BlockSink {
  readonly requests: SubmitBlockRequest[] = [];
  readonly emitter = new EventEmitter<{ submit: [SubmitBlockRequest] }>();
  async submitBlock(request: SubmitBlockRequest) {
    this.requests.push(request);
    this.emitter.emit('submit', request);
    return { accepted: true, hash: 'f'.repeat(64) };
  }
}

/** A fixture job (bitcoin main, 4-byte extranonce1, 8-byte extranonce2). */
export function job(jobId: string, options: Parameters<typeof makeJob>[0] = {}): Job {
  return makeJob({ jobId, ...options });
}

export interface Harness {
  redis: RedisServer;
  client: RedisClient;
  keys: KeyBuilder;
  dirs: string[];
  servers: StratumServer[];
  start(
    options?: Partial<StratumServerOptions>,
  ): Promise<{ server: StratumServer; jobs: TestJobSource; blocks: RecordingBlockSink }>;
  close(): Promise<void>;
}

let prefixSeq = 0;

/** A Redis (one per test file) and servers on port 0 with a unique key prefix per harness. */
export async function createHarness(redis?: RedisServer): Promise<Harness> {
  const own = redis ?? (await startRedis());
  const client = connectRedis(own.url);
  const keys = createKeyBuilder({ prefix: `t${process.pid}-${++prefixSeq}-${Date.now()}:` });
  const harness: Harness = {
    redis: own,
    client,
    keys,
    dirs: [],
    servers: [],
    async start(options = {}) {
      const dir = mkdtempSync(join(tmpdir(), 'hw-stratum-'));
      harness.dirs.push(dir);
      const jobs = (options.jobs as TestJobSource | undefined) ?? new TestJobSource();
      const blocks = (options.blockSink as RecordingBlockSink | undefined) ?? new RecordingBlockSink();
      const server = await createStratumServer({
        id: `s${harness.servers.length + 1}`,
        chain: CHAIN,
        params: BITCOIN_MAIN,
        host: '127.0.0.1',
        port: 0,
        redis: client,
        keys,
        jobs,
        blockSink: blocks,
        spoolDir: dir,
        extranonce2Size: 8,
        ...options,
        vardiff: { initialDifficulty: ANY_DIFF, minDifficulty: 1e-15, enabled: false, ...options.vardiff },
      });
      harness.servers.push(server);
      await server.start();
      return { server, jobs, blocks };
    },
    async close() {
      await Promise.all(harness.servers.map((s) => s.close()));
      client.disconnect();
      for (const dir of harness.dirs) rmSync(dir, { recursive: true, force: true });
      if (!redis) await own.stop();
    },
  };
  return harness;
}

export interface StratumMessage {
  id: number | string | null;
  method?: string;
  params?: unknown[];
  result?: unknown;
  error?: [number, string, null] | null;
}

/**
 * A raw stratum client on a plain socket: writes exact bytes, reads whole lines, and
 * waits for messages by event (never by time).
 */
export class RawClient extends EventEmitter<{ message: [StratumMessage]; closed: [] }> {
  readonly messages: StratumMessage[] = [];
  /** Lines that were not JSON (must never happen). */
  readonly junk: string[] = [];
  private buffer = '';
  private nextId = 1;
  closed = false;

  private constructor(readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.emit('closed');
    });
  }

  /** Connects from `localAddress` (any 127.x.y.z works on Linux: a distinct client address). */
  static async connect(port: number, localAddress?: string): Promise<RawClient> {
    const socket = connect({ port, host: '127.0.0.1', ...(localAddress && { localAddress }) });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl = this.buffer.indexOf('\n');
    while (nl !== -1) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      try {
        const msg = JSON.parse(line) as StratumMessage;
        this.messages.push(msg);
        this.emit('message', msg);
      } catch {
        this.junk.push(line);
      }
      nl = this.buffer.indexOf('\n');
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The line of a request (with newline) and the id it uses. */
  line(method: string, params: unknown[] = []): { id: number; text: string } {
    const id = this.nextId++;
    return { id, text: `${JSON.stringify({ id, method, params })}\n` };
  }

  /** Sends a request and resolves with its response. */
  async request(method: string, params: unknown[] = []): Promise<StratumMessage> {
    const { id, text } = this.line(method, params);
    const reply = this.waitFor((m) => m.id === id && m.method === undefined, this.messages.length);
    this.write(text);
    return reply;
  }

  /** The first message (already received or coming) matching `match`, from index `from`. */
  waitFor(match: (m: StratumMessage) => boolean, from = 0): Promise<StratumMessage> {
    const seen = this.messages.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    if (this.closed) return Promise.reject(new Error('connection is closed'));
    return new Promise((resolve, reject) => {
      const onMessage = (m: StratumMessage) => {
        if (!match(m)) return;
        cleanup();
        resolve(m);
      };
      const onClosed = () => {
        cleanup();
        reject(new Error(`connection closed while waiting; got ${JSON.stringify(this.messages.slice(-3))}`));
      };
      const cleanup = () => {
        this.off('message', onMessage);
        this.off('closed', onClosed);
      };
      this.on('message', onMessage);
      this.on('closed', onClosed);
    });
  }

  /** The next notification of `method` after the messages seen so far (or from `from`). */
  nextNotification(method: string, from = this.messages.length): Promise<StratumMessage> {
    return this.waitFor((m) => m.method === method, from);
  }

  async waitClosed(): Promise<void> {
    if (this.closed) return;
    await once(this, 'closed');
  }

  /** subscribe + authorize; resolves with the subscribe reply and the first notify. */
  async handshake(user = USER, sessionId?: string, password = 'x') {
    const from = this.messages.length;
    const subscribe = await this.request('mining.subscribe', sessionId ? ['raw/1', sessionId] : ['raw/1']);
    const authorize = await this.request('mining.authorize', [user, password]);
    const notify = await this.waitFor((m) => m.method === 'mining.notify', from);
    const [, extranonce1, extranonce2Size] = subscribe.result as [unknown, string, number];
    const sessionIdGiven = ((subscribe.result as [[string, string][]])[0][0] as [string, string])[1];
    return { subscribe, authorize, notify, extranonce1, extranonce2Size, sessionId: sessionIdGiven };
  }

  close(): void {
    this.socket.destroy();
  }
}

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/**
 * Live heap bytes after full collections, once pending close callbacks have run: compare two
 * readings of the same process to see whether something was left behind.
 */
export async function settledHeapBytes(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
  }
  return process.memoryUsage().heapUsed;
}
