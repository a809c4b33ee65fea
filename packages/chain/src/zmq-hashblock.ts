import { EventEmitter } from 'node:events';
import { Subscriber } from 'zeromq';

export interface HashblockListenerOptions {
  /** The daemon's `-zmqpubhashblock` endpoint, e.g. `tcp://127.0.0.1:28332`. */
  endpoint: string;
  /** First reconnect pause after the publisher goes away. @defaultValue 100 */
  reconnectIntervalMs?: number;
  /** Reconnect pauses grow up to this. @defaultValue 5_000 */
  reconnectMaxIntervalMs?: number;
  /**
   * ZMTP heartbeat: a publisher that stops answering for 3 intervals (a dead host, a silent
   * NAT drop) is disconnected and reconnected. 0 disables. @defaultValue 5_000
   */
  heartbeatIntervalMs?: number;
}

export interface HashblockEvent {
  /** Block hash as RPC prints it (the daemon sends it in that byte order). */
  hash: string;
  sequence: number;
}

export interface HashblockEvents {
  block: [HashblockEvent];
  /** Notifications were lost (publisher's high-water mark, a reconnect): poll the daemon. */
  gap: [{ expected: number; received: number; missed: number }];
  /** The sequence went backwards: the daemon restarted. */
  reset: [{ expected: number; received: number }];
  connect: [endpoint: string];
  disconnect: [endpoint: string];
  malformed: [reason: string];
  error: [Error];
}

const TOPIC = 'hashblock';
const HASH_BYTES = 32;
const SEQUENCE_BYTES = 4;
const HALF_RANGE = 2 ** 31;

/**
 * Listens to a bitcoind-style ZMQ `hashblock` publisher: 3-frame messages
 * `['hashblock', <32-byte hash>, <uint32 LE sequence>]`. Detects lost notifications from the
 * sequence and reconnects on its own (ZeroMQ keeps retrying the endpoint).
 */
export class HashblockListener extends EventEmitter<HashblockEvents> {
  readonly endpoint: string;
  readonly #socket: Subscriber;
  #expected: number | undefined;
  #closed = false;
  readonly #done: Promise<void>;

  constructor(options: HashblockListenerOptions) {
    super();
    this.endpoint = options.endpoint;
    const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5_000;
    this.#socket = new Subscriber({
      linger: 0,
      reconnectInterval: options.reconnectIntervalMs ?? 100,
      reconnectMaxInterval: options.reconnectMaxIntervalMs ?? 5_000,
      heartbeatInterval: heartbeatIntervalMs,
      heartbeatTimeout: heartbeatIntervalMs * 3,
    });
    this.#socket.events.on('connect', ({ address }) => this.emit('connect', address));
    this.#socket.events.on('disconnect', ({ address }) => this.emit('disconnect', address));
    this.#socket.subscribe(TOPIC);
    this.#socket.connect(options.endpoint);
    this.#done = this.#receive();
  }

  /** The sequence number the next notification should carry, once one was seen. */
  get expectedSequence(): number | undefined {
    return this.#expected;
  }

  /** Closes the socket (linger 0: nothing is left queued). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    await this.#done;
  }

  async #receive(): Promise<void> {
    try {
      for await (const frames of this.#socket) {
        this.#message(frames);
      }
    } catch (err) {
      if (!this.#closed && this.listenerCount('error') > 0) this.emit('error', err as Error);
    }
  }

  #message(frames: Buffer[]): void {
    const [topic, hash, sequence] = frames;
    // The subscription is a prefix match: ignore other topics sharing the prefix.
    if (topic?.toString('latin1') !== TOPIC) return;
    if (frames.length !== 3 || hash?.length !== HASH_BYTES || sequence?.length !== SEQUENCE_BYTES) {
      this.emit('malformed', `expected [topic, 32-byte hash, 4-byte sequence], got ${describe(frames)}`);
      return;
    }
    const received = sequence.readUInt32LE(0);
    const expected = this.#expected;
    if (expected !== undefined && received !== expected) {
      const ahead = (received - expected) >>> 0;
      if (ahead < HALF_RANGE) {
        this.emit('gap', { expected, received, missed: ahead });
      } else {
        this.emit('reset', { expected, received });
      }
    }
    this.#expected = (received + 1) >>> 0;
    this.emit('block', { hash: hash.toString('hex'), sequence: received });
  }
}

function describe(frames: Buffer[]): string {
  return `${frames.length} frames of ${frames.map((f) => f.length).join('/')} bytes`;
}

/** Convenience: `new HashblockListener(options)`. */
export function listenHashblock(options: HashblockListenerOptions): HashblockListener {
  return new HashblockListener(options);
}
