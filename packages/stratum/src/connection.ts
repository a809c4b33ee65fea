import type { Socket } from 'node:net';
import { LineFramer } from '@hashwire/protocol';
import type { SavedSession } from './session-store.js';
import type { SessionState } from './session.js';

/** Why a connection ended; logged, counted in stats, and given to `disconnect` listeners. */
export type CloseReason =
  | 'client-closed'
  | 'per-ip-limit'
  | 'server-full'
  | 'socket-error'
  | 'line-too-long'
  | 'output-overflow'
  | 'too-many-errors'
  | 'auth-timeout'
  | 'idle-timeout'
  | 'banned'
  | 'bad-proxy-header'
  | 'proxy-from-untrusted'
  | 'queue-overflow'
  | 'replaced'
  | 'drained'
  | 'drain-timeout'
  | 'suspended'
  | 'server-closed'
  /** A SOLO job, and the session's payout address is none of this chain's (a session resumed from elsewhere). */
  | 'bad-payout-address';

/**
 * The live side of one miner connection: its socket, its line framer, and the plain
 * session state. Holds no logic of its own besides bounded writing; the server's handlers
 * act on it.
 */
export class Connection {
  readonly framer: LineFramer;
  /** Bytes read before a trusted proxy's PROXY header was complete. */
  preamble: Buffer | null = null;
  /** Whether the first bytes were looked at (PROXY header or not). */
  headerDone = false;
  /** Lines held while an order-sensitive request (subscribe) is being answered. */
  held: string[] | null = null;
  /** Counted against the per-address limit under `state.ip`. */
  counted = false;
  closed = false;
  /** Shares submitted and not answered yet. */
  inFlight = 0;
  /** What this connection last wrote to `sess:{id}` (null: nothing yet). */
  saved: SavedSession | null = null;
  /** When the stored session's TTL was last restarted (save or refresh), ms since epoch. */
  ttlStartedAt = 0;
  /** `state.extranonce1` as bytes, for validation (set when subscribed). */
  extranonce1: Buffer = Buffer.alloc(0);

  constructor(
    readonly socket: Socket,
    public state: SessionState,
    maxLineBytes: number,
    private readonly maxOutputBytes: number,
  ) {
    this.framer = new LineFramer({ maxLineBytes });
  }

  /**
   * Writes a line or a prebuilt buffer. Returns false (and writes nothing) when the miner
   * does not read and its buffered output passed the cap: the caller closes it.
   */
  write(data: string | Buffer): boolean {
    if (this.closed) return true;
    if (this.socket.writableLength > this.maxOutputBytes) return false;
    this.socket.write(data);
    return true;
  }
}
