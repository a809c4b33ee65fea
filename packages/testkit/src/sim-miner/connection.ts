import net from 'node:net';
import { LineFramer } from '@hashwire/protocol';

/** Server lines can carry long merkle branches; far more than any real one. */
const MAX_SERVER_LINE_BYTES = 1024 * 1024;

/** A request failed because its connection closed (or timed out) before the answer came. */
export class NoAnswerError extends Error {
  override readonly name = 'NoAnswerError';
}

export interface StratumReply {
  result: unknown;
  error: unknown;
}

interface Pending {
  resolve: (reply: StratumReply) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export interface ServerMessageHandler {
  /** A notification (or a server request when `id` is not null). */
  onMessage(method: string, params: unknown[], id: unknown): void;
  /** A line that is not JSON or not a known shape. */
  onProtocolError(reason: string): void;
}

/**
 * One miner-side stratum connection: newline-delimited JSON-RPC with numbered requests,
 * replies matched by id, and notifications handed to the worker.
 */
export class StratumClientConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly framer = new LineFramer({ maxLineBytes: MAX_SERVER_LINE_BYTES });
  private closeReason: string | null = null;
  /** Resolves with the reason once the socket is closed. */
  readonly closed: Promise<string>;

  private constructor(
    private readonly socket: net.Socket,
    private readonly handler: ServerMessageHandler,
  ) {
    let resolveClosed!: (reason: string) => void;
    this.closed = new Promise((resolve) => {
      resolveClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.closeReason ??= `socket error: ${err.message}`;
    });
    socket.on('close', () => {
      this.closeReason ??= 'closed by the server';
      this.failPending(this.closeReason);
      resolveClosed(this.closeReason);
    });
  }

  /** Connects; rejects on a refused or failed connect (or when `signal` aborts first). */
  static connect(
    host: string,
    port: number,
    handler: ServerMessageHandler,
    signal: AbortSignal,
    localAddress?: string,
  ): Promise<StratumClientConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, ...(localAddress !== undefined && { localAddress }) });
      const onAbort = (): void => {
        socket.destroy();
        reject(new Error('stopped'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', (err) => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        reject(err);
      });
      socket.once('connect', () => {
        signal.removeEventListener('abort', onAbort);
        socket.removeAllListeners('error');
        resolve(new StratumClientConnection(socket, handler));
      });
    });
  }

  get isOpen(): boolean {
    return this.closeReason === null && !this.socket.destroyed;
  }

  /** Requests sent and not answered yet. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Sends a request; resolves with the server's `{ result, error }`, rejects with
   * NoAnswerError when the connection closes (or `timeoutMs` passes) first.
   */
  request(method: string, params: unknown[], timeoutMs?: number): Promise<StratumReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new NoAnswerError(`${method}: ${this.closeReason ?? 'connection closed'}`));
        return;
      }
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.pending.delete(id);
              reject(new NoAnswerError(`${method}: no answer within ${timeoutMs} ms`));
            }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(`${JSON.stringify({ id, method, params })}\n`);
    });
  }

  /** Answers a server request (e.g. `client.get_version`). */
  reply(id: unknown, result: unknown, error: unknown = null): void {
    if (this.isOpen) this.socket.write(`${JSON.stringify({ id, result, error })}\n`);
  }

  /** Closes at once; pending requests fail with NoAnswerError. */
  close(reason: string): void {
    this.closeReason ??= reason;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.framer.push(chunk);
    } catch (err) {
      this.handler.onProtocolError((err as Error).message);
      this.close('server line too long');
      return;
    }
    for (const line of lines) {
      if (!this.isOpen) return;
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.handler.onProtocolError('invalid JSON from the server');
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      this.handler.onProtocolError('server message is not a JSON object');
      return;
    }
    const { id, method, params, result, error } = msg as Record<string, unknown>;
    if (typeof method === 'string') {
      this.handler.onMessage(method, Array.isArray(params) ? params : [], id ?? null);
      return;
    }
    const pending = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (!pending) {
      this.handler.onProtocolError(`reply to an unknown request id ${JSON.stringify(id)}`);
      return;
    }
    this.pending.delete(id as number);
    if (pending.timer) clearTimeout(pending.timer);
    pending.resolve({ result: result ?? null, error: error ?? null });
  }

  private failPending(reason: string): void {
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new NoAnswerError(reason));
    }
    this.pending.clear();
  }
}
