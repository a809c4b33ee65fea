import { once } from 'node:events';
import { type Socket, connect } from 'node:net';
import { LITECOIN_REGTEST, shareTarget, targetToBuffer } from '@hashwire/chain';
import { grindNonce } from '@hashwire/testkit';

// Hostile stratum clients for the soak test: a raw socket each, speaking whatever they like,
// and, where the attack needs real work, grinding real scrypt shares for their own session.

/**
 * How long a hostile client waits for an answer before it counts the request unanswered: far
 * beyond any answer a working server gives (a 1,000-submit burst is answered in milliseconds),
 * and beyond what a shared 2-core machine under a load of 20 delays one by (5 s was, once).
 */
export const ANSWER_TIMEOUT_MS = 15_000;

export interface Reply {
  id: unknown;
  result?: unknown;
  error?: unknown;
}

/** One raw stratum connection: requests by id, the last job and difficulty the server sent. */
export class StratumSocket {
  closed = false;
  /** Requests the server left unanswered past {@link ANSWER_TIMEOUT_MS} while the connection stayed open. */
  unanswered = 0;
  /** The first few requests left unanswered, for the failure message. */
  readonly unansweredRequests: string[] = [];
  /** The last `mining.notify` params. */
  notify: unknown[] | null = null;
  difficulty = 1;
  extranonce1 = '';
  extranonce2Size = 4;
  sessionId = '';
  private buffer = '';
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: Reply | null) => void>();
  private readonly notifyWaiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      for (const resolve of this.waiting.values()) resolve(null);
      this.waiting.clear();
      for (const wake of this.notifyWaiters.splice(0)) wake();
    });
  }

  /** Null when the connection is refused or closed at once (a ban, a full server). */
  static async open(port: number, localAddress: string): Promise<StratumSocket | null> {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    try {
      await once(socket, 'connect');
    } catch {
      return null;
    }
    return new StratumSocket(socket);
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl !== -1; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      let msg: Reply & { method?: string; params?: unknown[] };
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.method === 'mining.notify' && Array.isArray(msg.params)) {
        this.notify = msg.params;
        for (const wake of this.notifyWaiters.splice(0)) wake();
      } else if (msg.method === 'mining.set_difficulty' && typeof msg.params?.[0] === 'number') {
        this.difficulty = msg.params[0];
      } else if (typeof msg.id === 'number') {
        const resolve = this.waiting.get(msg.id);
        this.waiting.delete(msg.id);
        resolve?.(msg);
      }
    }
  }

  /** Writes raw text (junk included). */
  write(text: string): void {
    if (!this.closed) this.socket.write(text);
  }

  /** Sends a request; resolves with its reply, or null if the connection closed first. */
  request(method: string, params: unknown): Promise<Reply | null> {
    if (this.closed) return Promise.resolve(null);
    const id = this.nextId++;
    const text = JSON.stringify({ id, method, params });
    const reply = this.answer(id, text);
    this.socket.write(`${text}\n`);
    return reply;
  }

  /** The reply to request `id`; null when the connection closes first or no answer comes in time. */
  private answer(id: number, text: string): Promise<Reply | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        this.unanswered++;
        if (this.unansweredRequests.length < 5) this.unansweredRequests.push(text.slice(0, 300));
        resolve(null);
      }, ANSWER_TIMEOUT_MS);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
  }

  /** Sends many requests in one write and waits for every answer. */
  burst(method: string, params: unknown[][]): Promise<(Reply | null)[]> {
    if (this.closed) return Promise.resolve(params.map(() => null));
    const replies = params.map((p) => {
      const id = this.nextId++;
      const text = JSON.stringify({ id, method, params: p });
      return { text: `${text}\n`, reply: this.answer(id, text) };
    });
    this.socket.write(replies.map((r) => r.text).join(''));
    return Promise.all(replies.map((r) => r.reply));
  }

  /** subscribe (resuming `sessionId` if given) and authorize; false if the server said no. */
  async handshake(username: string, sessionId?: string): Promise<boolean> {
    const sub = await this.request('mining.subscribe', sessionId ? ['hostile/1', sessionId] : ['hostile/1']);
    if (!sub || !Array.isArray(sub.result)) return false;
    const [subs, extranonce1, size] = sub.result as [[string, string][], string, number];
    this.sessionId = subs[0]?.[1] ?? '';
    this.extranonce1 = extranonce1;
    this.extranonce2Size = size;
    const auth = await this.request('mining.authorize', [username, 'x']);
    return auth?.result === true;
  }

  /** Resolves once a job arrived (at once if one did); null if the connection closed or none came in time. */
  async job(): Promise<unknown[] | null> {
    if (this.notify || this.closed) return this.notify;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ANSWER_TIMEOUT_MS);
      this.notifyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.notify;
  }

  close(): void {
    this.socket.destroy();
  }
}

const TARGETS = new Map<number, Buffer>();

/**
 * Grinds a share meeting the session's difficulty for its last job: `mining.submit` params
 * after the username. Each call takes the next extranonce2 of `counter`.
 */
export function grindShare(conn: StratumSocket, extranonce2Counter: number): string[] | null {
  const notify = conn.notify;
  if (!notify) return null;
  const [jobId, prevhash, coinb1, coinb2, merkleBranch, version, nbits, ntime] = notify as [
    string,
    string,
    string,
    string,
    string[],
    string,
    string,
    string,
  ];
  let target = TARGETS.get(conn.difficulty);
  if (!target) {
    target = targetToBuffer(shareTarget(LITECOIN_REGTEST, conn.difficulty));
    TARGETS.set(conn.difficulty, target);
  }
  const extranonce2 = extranonce2Counter.toString(16).padStart(conn.extranonce2Size * 2, '0');
  const nonce = grindNonce(
    { jobId, prevhash, coinb1, coinb2, merkleBranch, version, nbits, ntime },
    Buffer.from(conn.extranonce1, 'hex'),
    Buffer.from(extranonce2, 'hex'),
    { target },
  );
  return [jobId, extranonce2, ntime, nonce];
}
