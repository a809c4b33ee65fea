import { randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { LineFramer } from '@hashwire/protocol';

export interface BlocknotifyReceiverOptions {
  /** Loopback address to listen on. @defaultValue '127.0.0.1' */
  host?: string;
  /** @defaultValue 0 (a free port) */
  port?: number;
}

export interface BlocknotifyEvents {
  /** `source` is the label given to `command(source)`, '' when none. */
  block: [hash: string, source: string];
  /** A line that is not `<token> [source] <hash>`: a stray sender, or a wrong command. */
  rejected: [reason: string];
}

// "<token> <hash>" or "<token> <source> <hash>"; a line never needs more than this.
const MAX_LINE_BYTES = 256;
const IDLE_CONNECTION_MS = 5_000;
const HASH = /^[0-9a-f]{64}$/;
const SOURCE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Receives `-blocknotify` calls of a coin daemon over TCP on loopback. The daemon runs the
 * command from `command()` through /bin/sh with `%s` replaced by the block hash; the command
 * writes one line `<token> [source] <hash>` with bash's /dev/tcp, so it needs nothing beyond
 * bash. The per-receiver random token makes stray connections harmless.
 */
export class BlocknotifyReceiver extends EventEmitter<BlocknotifyEvents> {
  readonly #server: net.Server;
  readonly #token: Buffer;
  readonly #sockets = new Set<net.Socket>();
  #host = '127.0.0.1';
  #port = 0;

  private constructor() {
    super();
    this.#token = Buffer.from(randomBytes(16).toString('hex'));
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  /** Starts listening; resolves when the port is bound. */
  static async create(options: BlocknotifyReceiverOptions = {}): Promise<BlocknotifyReceiver> {
    const receiver = new BlocknotifyReceiver();
    await receiver.#listen(options.host ?? '127.0.0.1', options.port ?? 0);
    return receiver;
  }

  get port(): number {
    return this.#port;
  }

  get host(): string {
    return this.#host;
  }

  /**
   * The `-blocknotify` value for a daemon. `source` (letters, digits, `_.-`) labels the daemon
   * in `block` events, so one receiver can serve several daemons.
   */
  command(source = ''): string {
    if (source !== '' && !SOURCE.test(source)) {
      throw new TypeError(`blocknotify source: use 1-64 of [A-Za-z0-9_.-], got ${JSON.stringify(source)}`);
    }
    return tcpBlocknotifyCommand(this.#host, this.#port, this.#token.toString(), source);
  }

  /** Stops listening and drops open connections. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const address = this.#server.address() as net.AddressInfo;
        this.#host = address.address;
        this.#port = address.port;
        resolve();
      });
    });
  }

  #accept(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.setTimeout(IDLE_CONNECTION_MS, () => socket.destroy());
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const framer = new LineFramer({ maxLineBytes: MAX_LINE_BYTES });
    socket.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = framer.push(chunk);
      } catch {
        this.emit('rejected', 'line too long');
        socket.destroy();
        return;
      }
      for (const line of lines) this.#line(line);
    });
  }

  #line(line: string): void {
    const words = line.trim().split(' ');
    const token = Buffer.from(words[0] ?? '', 'latin1');
    if (token.length !== this.#token.length || !timingSafeEqual(token, this.#token)) {
      this.emit('rejected', 'bad token');
      return;
    }
    const hash = words.length === 3 ? words[2] : words[1];
    const source = words.length === 3 ? (words[1] as string) : '';
    if ((words.length !== 2 && words.length !== 3) || hash === undefined || !HASH.test(hash)) {
      this.emit('rejected', 'malformed line');
      return;
    }
    this.emit('block', hash, source);
  }
}

/**
 * The shell command a daemon runs on each new tip: `%s` is the daemon's placeholder for the block
 * hash. Token and source must be shell-safe (the receiver's are).
 */
export function tcpBlocknotifyCommand(host: string, port: number, token: string, source = ''): string {
  const words = source ? `${token} ${source} %s` : `${token} %s`;
  return `bash -c 'echo ${words} >/dev/tcp/${host}/${port}'`;
}

/** Convenience: `BlocknotifyReceiver.create(options)`. */
export function createBlocknotifyReceiver(
  options?: BlocknotifyReceiverOptions,
): Promise<BlocknotifyReceiver> {
  return BlocknotifyReceiver.create(options);
}
