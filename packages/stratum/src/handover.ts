import type { Socket } from 'node:net';
import type { Connection } from './connection.js';
import type { SavedSession } from './session-store.js';
import type { SessionState } from './session.js';

/**
 * A live session on its way from one stratum process to another, next to its socket: all the
 * new owner needs to carry on as if nothing happened. Plain JSON, so it crosses an IPC channel.
 */
export interface HandedSession {
  state: SessionState;
  /** Bytes of an unfinished line the old owner had read (base64): the new one reads on from there. */
  unfinished: string;
  /** Whether the connection's first bytes (PROXY header or not) were looked at. */
  headerDone: boolean;
  /** Bytes of a PROXY header not yet complete (base64), or null. */
  preamble: string | null;
  /** Whether the old owner counted it against its address's limit (the new one does too). */
  counted: boolean;
  /** What was last written to Redis for it, and when its TTL started. */
  saved: SavedSession | null;
  ttlStartedAt: number;
  /**
   * The share keys the old owner credited to this session (job id, key as base64), so a share
   * it sent there is a duplicate here too. Absent from an owner that did not send them.
   */
  accepted?: [jobId: string, key: string][];
  /** When the old owner stopped reading it (ms since the epoch): the new one measures the pause. */
  stoppedAt?: number;
  /** When it left the old owner (its claim detached, the socket being sent). */
  sentAt?: number;
}

/**
 * Sessions moving between two servers at once (`handOffSessions`). Each waits for those ahead of
 * it on the IPC channel (Node passes one socket handle per round trip), so a few: measured with
 * 200 miners submitting without pause, 3 at a time paused each 61 ms at the median and 195 ms at
 * most and moved all in 2.2 s; 10 at a time, 158 and 374 ms (`docs/architecture.md`).
 */
export const HANDOFF_WAVE_SIZE = 3;

/** Where `handOffSessions` delivers each session: another server in this process, or one over IPC. */
export type SessionReceiver = (session: HandedSession, socket: Socket) => Promise<void>;

/**
 * Stops reading a socket now, not at the next full buffer: bytes that arrive from here on stay
 * in the kernel until the new owner reads them. (`pause()` alone only stops delivering what
 * Node keeps reading; a socket passed to another process would lose what was read meanwhile.)
 */
export function stopReading(socket: Socket): void {
  socket.pause();
  const handle = (socket as unknown as { _handle?: { readStop?: () => number; reading?: boolean } })._handle;
  if (handle?.readStop) {
    handle.reading = false;
    handle.readStop();
  }
}

/** The session of a connection whose reading stopped at a line boundary, ready to travel. */
export function handedSession(
  conn: Connection,
  accepted: readonly [jobId: string, key: string][] = [],
  stoppedAt = Date.now(),
): HandedSession {
  return {
    stoppedAt,
    accepted: accepted.map(([jobId, key]) => [jobId, Buffer.from(key, 'latin1').toString('base64')]),
    state: conn.state,
    unfinished: conn.framer.unfinished().toString('base64'),
    headerDone: conn.headerDone,
    preamble: conn.preamble ? conn.preamble.toString('base64') : null,
    counted: conn.counted,
    saved: conn.saved,
    ttlStartedAt: conn.ttlStartedAt,
  };
}

/** Reads a socket again after `stopReading` (or as its new owner). */
export function startReading(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: { readStart?: () => number; reading?: boolean } })._handle;
  if (handle?.readStart && !handle.reading) {
    handle.reading = true;
    handle.readStart();
  }
  socket.resume();
}

/** The IPC message a handed session travels in, its socket attached. */
export const HANDED_SESSION = 'hashwire:handed-session';
/** The receiver's word that it has a handed session's socket (`{ type, n }`), back to the sender. */
export const SESSION_TAKEN = 'hashwire:session-taken';

interface HandedMessage {
  type: typeof HANDED_SESSION;
  session: HandedSession;
  /** The sender's number for it, which the receiver's `SESSION_TAKEN` names. */
  n?: number;
}

interface TakenMessage {
  type: typeof SESSION_TAKEN;
  n: number;
}

/** The end of an IPC channel: `process` in a child, the `ChildProcess` in its parent. */
export interface IpcChannel {
  send(
    message: unknown,
    handle?: Socket,
    options?: { keepOpen: boolean },
    callback?: (error: Error | null) => void,
  ): boolean;
  on(event: 'message', listener: (message: unknown, handle?: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown, handle?: unknown) => void): unknown;
}

function isHanded(message: unknown): message is HandedMessage {
  return (message as HandedMessage | null)?.type === HANDED_SESSION;
}

function isTaken(message: unknown): message is TakenMessage {
  return (message as TakenMessage | null)?.type === SESSION_TAKEN;
}

/**
 * A `SessionReceiver` that sends each session with its socket over an IPC channel, and resolves
 * once the receiver has the socket (its `SESSION_TAKEN`, relayed back by a process in between).
 * Without that word a sender would only know its own channel took the socket: a relay slower
 * to pass sockets on than to take them would queue every session, each paused meanwhile.
 * Until the first word comes (a receiver of an older build sends none), a session counts as
 * gone once written.
 */
export function sendOverIpc(channel: IpcChannel): SessionReceiver {
  const TAKEN_TIMEOUT_MS = 5000;
  let seq = 0;
  let receiverTells = false;
  const waiting = new Map<number, () => void>();
  const onMessage = (message: unknown) => {
    if (!isTaken(message)) return;
    receiverTells = true;
    const done = waiting.get(message.n);
    waiting.delete(message.n);
    done?.();
    if (waiting.size === 0) channel.off('message', onMessage);
  };
  return (session, socket) =>
    new Promise((resolve, reject) => {
      const n = ++seq;
      const message: HandedMessage = { type: HANDED_SESSION, session, n };
      if (waiting.size === 0) channel.on('message', onMessage);
      waiting.set(n, resolve);
      channel.send(message, socket, { keepOpen: false }, (error) => {
        if (error) {
          waiting.delete(n);
          reject(error);
        } else if (!receiverTells) {
          waiting.delete(n);
          resolve();
        } else {
          // A relay that lost it (the receiver died) says nothing: gone all the same.
          setTimeout(() => {
            if (waiting.delete(n)) resolve();
            if (waiting.size === 0) channel.off('message', onMessage);
          }, TAKEN_TIMEOUT_MS).unref();
        }
        if (waiting.size === 0) channel.off('message', onMessage);
      });
    });
}

/**
 * Takes the sessions that arrive over an IPC channel: each socket stops reading in the turn it
 * arrives (a received socket starts reading at once), the sender hears it was taken, and it goes
 * to `adopt`. Returns a function that stops listening.
 */
export function receiveOverIpc(
  channel: IpcChannel,
  adopt: (socket: Socket, session: HandedSession) => Promise<unknown>,
): () => void {
  const onMessage = (message: unknown, handle?: unknown) => {
    if (!isHanded(message) || !handle) return;
    const socket = handle as Socket;
    stopReading(socket);
    if (message.n !== undefined) channel.send({ type: SESSION_TAKEN, n: message.n } satisfies TakenMessage);
    void adopt(socket, message.session).catch(() => socket.destroy());
  };
  channel.on('message', onMessage);
  return () => channel.off('message', onMessage);
}

/**
 * For the process between two others (a master whose workers are the old and the new
 * version): passes every session arriving from `from` on to `to`, without reading a byte, and
 * the receiver's word that it took one back to `from`.
 */
export function relayOverIpc(from: IpcChannel, to: IpcChannel): () => void {
  const onMessage = (message: unknown, handle?: unknown) => {
    if (!isHanded(message) || !handle) return;
    const socket = handle as Socket;
    stopReading(socket);
    to.send(message, socket, { keepOpen: false }, (error) => {
      if (error) socket.destroy();
    });
  };
  const onTaken = (message: unknown) => {
    if (isTaken(message)) from.send(message);
  };
  from.on('message', onMessage);
  to.on('message', onTaken);
  return () => {
    from.off('message', onMessage);
    to.off('message', onTaken);
  };
}
