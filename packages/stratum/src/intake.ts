import {
  FrameError,
  StratumErrorCode,
  type StratumErrorTuple,
  type StratumRequest,
} from '@hashwire/protocol';
import type { CloseReason, Connection } from './connection.js';
import type { StratumLogger } from './options.js';
import { type ProxyHeader, looksLikeProxyHeader, parseProxyHeader } from './proxy-protocol.js';

/** What turning a connection's bytes into request lines needs from the server. */
export interface IntakeHost {
  readonly logger: StratumLogger;
  /** Counts the connection against its address; the reason when it is refused. */
  admit(conn: Connection, now: number): 'banned' | 'per-ip-limit' | 'server-full' | null;
  reply(conn: Connection, id: StratumRequest['id'], result: unknown, error?: StratumErrorTuple | null): void;
  closeConnection(conn: Connection, reason: CloseReason, detail?: string): void;
  /** Handles one complete request line. */
  dispatch(conn: Connection, line: string): void;
}

/** Longest PROXY header accepted (v2 with TLVs); HAProxy's are well under this. */
const MAX_PROXY_HEADER = 4096;
/** Lines a miner may send while its subscribe is being answered. */
const MAX_HELD_LINES = 64;

/** `::ffff:1.2.3.4` → `1.2.3.4`, so limits and bans see one address per IPv4 client. */
export function plainAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * One chunk from a miner's socket: first a PROXY header (honoured only from a trusted
 * proxy; from anyone else it closes the connection), then lines, each handed to
 * `dispatch` — or held while the connection's subscribe is being answered.
 */
export function readChunk(host: IntakeHost, conn: Connection, chunk: Buffer, trusted: boolean): void {
  if (conn.closed) return;
  let data = chunk;
  if (!conn.headerDone) {
    data = conn.preamble ? Buffer.concat([conn.preamble, chunk]) : chunk;
    conn.preamble = null;
    const proxy = looksLikeProxyHeader(data) && (data[0] === 0x50 || data[0] === 0x0d);
    if (!trusted) {
      // Honouring it would let anyone pick the address our limits and bans see.
      if (proxy) {
        host.closeConnection(conn, 'proxy-from-untrusted');
        return;
      }
      conn.headerDone = true;
    } else if (!proxy) {
      // A trusted address speaking stratum directly (no PROXY header): fine.
      conn.headerDone = true;
      const refused = host.admit(conn, Date.now());
      if (refused) {
        host.closeConnection(conn, refused);
        return;
      }
    } else {
      let parsed: ReturnType<typeof parseProxyHeader>;
      try {
        parsed = parseProxyHeader(data);
      } catch (error) {
        host.closeConnection(conn, 'bad-proxy-header', (error as Error).message);
        return;
      }
      if (parsed.status === 'need-more') {
        if (data.length > MAX_PROXY_HEADER) {
          host.closeConnection(conn, 'bad-proxy-header', 'too long');
          return;
        }
        conn.preamble = Buffer.from(data);
        return;
      }
      conn.headerDone = true;
      if (!applyProxyHeader(host, conn, parsed.header)) return;
      data = data.subarray(parsed.consumed);
      if (data.length === 0) return;
    }
  }
  let lines: string[];
  try {
    lines = conn.framer.push(data);
  } catch (error) {
    if (error instanceof FrameError) {
      host.reply(conn, null, null, [
        StratumErrorCode.Other,
        `line too long (max ${error.maxLineBytes} bytes)`,
        null,
      ]);
      host.closeConnection(conn, 'line-too-long', `${error.seenBytes} bytes`);
      return;
    }
    throw error;
  }
  if (lines.length === 0) return;
  // Answers to the lines of one chunk leave in one write, not one syscall per line.
  conn.socket.cork();
  try {
    for (const line of lines) {
      if (conn.closed) return;
      if (conn.held) {
        if (conn.held.length >= MAX_HELD_LINES) {
          host.closeConnection(conn, 'queue-overflow');
          return;
        }
        conn.held.push(line);
      } else {
        host.dispatch(conn, line);
      }
    }
  } finally {
    conn.socket.uncork();
  }
}

function applyProxyHeader(host: IntakeHost, conn: Connection, header: ProxyHeader): boolean {
  const state = conn.state;
  if (header.uniqueId) state.connId = header.uniqueId.slice(0, 128);
  if (header.command === 'local') {
    // HAProxy's health check: the proxy itself, not a miner; nothing to count.
    host.logger.debug({ connId: state.connId }, 'stratum: proxy health check');
    return true;
  }
  if (header.sourceAddress) state.ip = plainAddress(header.sourceAddress);
  if (header.sourcePort !== undefined) state.port = header.sourcePort;
  const refused = host.admit(conn, Date.now());
  if (refused) {
    host.closeConnection(conn, refused);
    return false;
  }
  return true;
}

/** Runs the lines held while the connection's subscribe was answered. */
export function releaseHeld(host: IntakeHost, conn: Connection): void {
  const held = conn.held;
  conn.held = null;
  if (!held) return;
  for (let i = 0; i < held.length; i++) {
    if (conn.closed) return;
    const again = conn.held as string[] | null;
    if (again) {
      again.push(...held.slice(i));
      return;
    }
    host.dispatch(conn, held[i]!);
  }
}
