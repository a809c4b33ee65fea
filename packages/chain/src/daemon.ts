import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { BlockTemplate } from './template.js';

/** JSON-RPC error codes of bitcoin-family daemons that callers branch on. */
export const RpcCode = {
  MiscError: -1,
  InvalidAddressOrKey: -5,
  InvalidParameter: -8,
  /** The node has no peers; `getblocktemplate` refuses to work. */
  NotConnected: -9,
  /** The node is still in initial block download; `getblocktemplate` refuses to work. */
  InInitialDownload: -10,
  WalletNotFound: -18,
  DeserializationError: -22,
  VerifyRejected: -26,
  VerifyAlreadyInChain: -27,
  /** Loading block index, verifying blocks, ...: the daemon is starting. */
  InWarmup: -28,
  MethodNotFound: -32601,
} as const;

/** The daemon answered the call with a JSON-RPC error (`code` is the daemon's own code). */
export class DaemonError extends Error {
  override readonly name = 'DaemonError';
  constructor(
    readonly code: number,
    message: string,
    readonly method: string,
    readonly daemon: string,
  ) {
    super(message);
  }
}

/**
 * Why a call could not get an answer from the daemon:
 * `connect` (refused, reset, DNS), `timeout` (no full answer within the call's timeout),
 * `auth` (401/403, or the cookie file is missing), `http` (another non-JSON-RPC status such as
 * 503 "work queue depth exceeded"), `protocol` (the body is not a JSON-RPC reply).
 */
export type DaemonFailureKind = 'connect' | 'timeout' | 'auth' | 'http' | 'protocol';

/**
 * The daemon could not be reached or did not answer usefully. The message and `url` name the
 * daemon without credentials; nothing on this object carries the password.
 */
export class DaemonUnreachableError extends Error {
  override readonly name = 'DaemonUnreachableError';
  constructor(
    readonly kind: DaemonFailureKind,
    /** The daemon's URL without user and password. */
    readonly url: string,
    readonly method: string,
    detail: string,
    /** Set for `http` and `auth` failures. */
    readonly httpStatus?: number,
    /** The system error code for `connect` failures, e.g. `ECONNREFUSED`. */
    readonly errno?: string,
  ) {
    super(`daemon ${url} ${method}: ${detail}`);
  }
}

/** Answer of `submitblock`: the daemon returns a reason string, not an error, for a rejected block. */
export interface SubmitBlockResult {
  /** True when the daemon took the block (`null` result) or already had it (`duplicate`). */
  accepted: boolean;
  /** The daemon's verdict when it was not a plain accept, e.g. `bad-txnmrklroot`, `duplicate`, `inconclusive`. */
  reason?: string;
}

export interface GetBlockTemplateOptions {
  /** @defaultValue `['mweb', 'segwit']` (bitcoin daemons ignore the rule they do not know) */
  rules?: readonly string[];
  /** Turns the call into a long poll: the daemon answers when the template changes. */
  longpollId?: string;
  /** @defaultValue the client's `longpollTimeoutMs` for a long poll, else its `timeoutMs` */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface CallOptions {
  /** @defaultValue the client's `timeoutMs` */
  timeoutMs?: number;
  /** Aborting rejects the call with the signal's reason and closes its connection. */
  signal?: AbortSignal;
}

export interface DaemonClientOptions {
  /**
   * `http://host:port/` (optionally with a `/wallet/<name>` path). Credentials embedded in the
   * URL are taken out of it and used as user/password.
   */
  url: string;
  user?: string;
  password?: string;
  /** Path of the daemon's `.cookie`; read lazily and again after a 401 (the daemon restarted). */
  cookieFile?: string;
  /** @defaultValue host:port of `url` */
  name?: string;
  /** @defaultValue 30_000 */
  timeoutMs?: number;
  /** Timeout of a GBT long poll; a pending one holds one of the daemon's RPC threads. @defaultValue 300_000 */
  longpollTimeoutMs?: number;
  /**
   * Concurrent ordinary calls; more queue in the client instead of filling the daemon's work
   * queue (litecoind defaults: 4 RPC threads, work queue 16). Long polls use their own sockets.
   * @defaultValue 4
   */
  maxSockets?: number;
  /**
   * Idle keep-alive sockets are closed after this. Keep it short: a daemon waits for open
   * connections when it shuts down, and closes idle ones itself after `-rpcservertimeout`
   * (30 s), possibly just as a request reuses one. @defaultValue 5_000
   */
  idleSocketMs?: number;
}

/** `<datadir>/<network dir>/.cookie`; `network` is the daemon's sub-directory (`regtest`, `testnet4`, ...) or `main`. */
export function cookieFilePath(datadir: string, network: string): string {
  return network === 'main' ? path.join(datadir, '.cookie') : path.join(datadir, network, '.cookie');
}

const ERROR_BODY_CHARS = 200;

interface HttpAnswer {
  status: number;
  body: string;
}

/** JSON-RPC client of one bitcoin-family daemon over HTTP with keep-alive. */
export class DaemonClient {
  readonly name: string;
  /** The daemon's URL without credentials: safe to log. */
  readonly url: string;
  readonly #host: string;
  readonly #port: number;
  readonly #path: string;
  readonly #timeoutMs: number;
  readonly #longpollTimeoutMs: number;
  readonly #agent: http.Agent;
  readonly #longpollAgent: http.Agent;
  readonly #cookieFile: string | undefined;
  #authorization: string | undefined;
  #nextId = 1;

  constructor(options: DaemonClientOptions) {
    const parsed = new URL(options.url);
    if (parsed.protocol !== 'http:') {
      throw new TypeError(`daemon url: protocol must be http:, got ${parsed.protocol}`);
    }
    const user = options.user ?? decodeURIComponent(parsed.username);
    const password = options.password ?? decodeURIComponent(parsed.password);
    parsed.username = '';
    parsed.password = '';
    this.url = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
    this.#host = parsed.hostname.replace(/^\[|\]$/g, '');
    this.#port = Number(parsed.port || 80);
    this.#path = parsed.pathname || '/';
    this.name = options.name ?? parsed.host;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#longpollTimeoutMs = options.longpollTimeoutMs ?? 300_000;
    this.#cookieFile = options.cookieFile;
    if (!this.#cookieFile && !user) {
      throw new TypeError('daemon options: give either cookieFile or user/password');
    }
    if (!this.#cookieFile) {
      this.#authorization = basic(`${user}:${password}`);
    }
    const idleSocketMs = options.idleSocketMs ?? 5_000;
    this.#agent = new http.Agent({
      keepAlive: true,
      maxSockets: options.maxSockets ?? 4,
      timeout: idleSocketMs,
    });
    this.#longpollAgent = new http.Agent({ keepAlive: true, timeout: idleSocketMs });
  }

  /** Calls `method`; resolves with its result, rejects with `DaemonError` or `DaemonUnreachableError`. */
  async call<T = unknown>(
    method: string,
    params: readonly unknown[] = [],
    options: CallOptions = {},
  ): Promise<T> {
    return this.#call<T>(method, params, options, this.#agent);
  }

  getBlockTemplate(options: GetBlockTemplateOptions = {}): Promise<BlockTemplate> {
    const request: Record<string, unknown> = { rules: options.rules ?? ['mweb', 'segwit'] };
    const longpoll = options.longpollId !== undefined;
    if (longpoll) {
      request.longpollid = options.longpollId;
    }
    const callOptions: CallOptions = {
      timeoutMs: options.timeoutMs ?? (longpoll ? this.#longpollTimeoutMs : this.#timeoutMs),
    };
    if (options.signal) {
      callOptions.signal = options.signal;
    }
    return this.#call<BlockTemplate>(
      'getblocktemplate',
      [request],
      callOptions,
      longpoll ? this.#longpollAgent : this.#agent,
    );
  }

  /** Submits a serialized block; a rejection is a result (`accepted: false` with the daemon's reason). */
  async submitBlock(blockHex: string, options: CallOptions = {}): Promise<SubmitBlockResult> {
    const result = await this.call<string | null>('submitblock', [blockHex], options);
    return submitVerdict(result);
  }

  getBestBlockHash(options?: CallOptions): Promise<string> {
    return this.call<string>('getbestblockhash', [], options);
  }

  getBlockCount(options?: CallOptions): Promise<number> {
    return this.call<number>('getblockcount', [], options);
  }

  getBlockchainInfo(
    options?: CallOptions,
  ): Promise<{ chain: string; blocks: number; bestblockhash: string }> {
    return this.call('getblockchaininfo', [], options);
  }

  /**
   * Closes every connection to the daemon (pending calls fail). The client stays usable: later
   * calls open new connections. Call it before stopping a daemon, which waits for open ones.
   */
  close(): void {
    this.#agent.destroy();
    this.#longpollAgent.destroy();
  }

  async #call<T>(
    method: string,
    params: readonly unknown[],
    options: CallOptions,
    agent: http.Agent,
  ): Promise<T> {
    options.signal?.throwIfAborted();
    const id = this.#nextId++;
    const body = JSON.stringify({ jsonrpc: '1.0', id, method, params });
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    let answer = await this.#post(method, body, timeoutMs, options.signal, agent);
    if ((answer.status === 401 || answer.status === 403) && this.#cookieFile) {
      // A restarted daemon writes a new cookie: read it again and retry once.
      this.#authorization = undefined;
      answer = await this.#post(method, body, timeoutMs, options.signal, agent);
    }
    if (answer.status === 401 || answer.status === 403) {
      throw new DaemonUnreachableError(
        'auth',
        this.url,
        method,
        `authentication failed (HTTP ${answer.status})`,
        answer.status,
      );
    }
    let reply: { result?: unknown; error?: { code?: unknown; message?: unknown } | null };
    try {
      reply = JSON.parse(answer.body);
    } catch {
      const kind = answer.status === 200 ? 'protocol' : 'http';
      const text = answer.body.slice(0, ERROR_BODY_CHARS).trim();
      throw new DaemonUnreachableError(
        kind,
        this.url,
        method,
        `HTTP ${answer.status} ${text}`,
        answer.status,
      );
    }
    if (reply?.error) {
      const code = typeof reply.error.code === 'number' ? reply.error.code : RpcCode.MiscError;
      const message = typeof reply.error.message === 'string' ? reply.error.message : 'unknown error';
      throw new DaemonError(code, message, method, this.name);
    }
    if (reply === null || typeof reply !== 'object' || !('result' in reply)) {
      throw new DaemonUnreachableError('protocol', this.url, method, 'reply has neither result nor error');
    }
    return reply.result as T;
  }

  async #auth(method: string): Promise<string> {
    if (this.#authorization) {
      return this.#authorization;
    }
    const file = this.#cookieFile as string;
    let cookie: string;
    try {
      cookie = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new DaemonUnreachableError('auth', this.url, method, `cookie file ${file}: ${code}`);
    }
    this.#authorization = basic(cookie);
    return this.#authorization;
  }

  async #post(
    method: string,
    body: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    agent: http.Agent,
  ): Promise<HttpAnswer> {
    const authorization = await this.#auth(method);
    try {
      return await this.#request(method, body, authorization, timeoutMs, signal, agent);
    } catch (err) {
      // A kept-alive socket the daemon closed just as it was reused: the request never reached
      // the daemon, so sending it once more on a fresh socket is safe (Node's documented pattern).
      if (err instanceof StaleSocketError) {
        return this.#request(method, body, authorization, timeoutMs, signal, agent);
      }
      throw err;
    }
  }

  #request(
    method: string,
    body: string,
    authorization: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    agent: http.Agent,
  ): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | null, answer?: HttpAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(answer as HttpAnswer);
      };
      const req = http.request({
        host: this.#host,
        port: this.#port,
        path: this.#path,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization,
        },
      });
      const timer = setTimeout(() => {
        finish(new DaemonUnreachableError('timeout', this.url, method, `no answer within ${timeoutMs} ms`));
        req.destroy();
      }, timeoutMs);
      const onAbort = () => {
        finish(signal?.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError'));
        req.destroy();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (req.reusedSocket && err.code === 'ECONNRESET') {
          finish(new StaleSocketError());
          return;
        }
        const errno = err.code ?? 'error';
        finish(new DaemonUnreachableError('connect', this.url, method, errno, undefined, errno));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', () => {
          finish(new DaemonUnreachableError('connect', this.url, method, 'connection lost during the reply'));
        });
        res.on('end', () => {
          finish(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.end(body);
    });
  }
}

class StaleSocketError extends Error {}

function basic(credentials: string): string {
  return `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
}

/** Maps `submitblock`'s result (null, or a reason string) to a verdict. */
export function submitVerdict(result: string | null): SubmitBlockResult {
  if (result === null || result === undefined) {
    return { accepted: true };
  }
  // Submitting to several daemons: the ones that already got the block from a peer say so.
  return { accepted: result === 'duplicate', reason: result };
}
