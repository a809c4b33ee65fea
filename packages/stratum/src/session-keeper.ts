import type { Connection } from './connection.js';
import type { ExtranonceAllocator } from './extranonce.js';
import type { StratumLogger } from './options.js';
import { type SessionStore, isSavedCurrent, savedSession } from './session-store.js';
import { type SessionState, isResumable } from './session.js';

/**
 * A session whose stored copy is current keeps the TTL it got when written if that was at
 * most this share of the TTL ago (6 s of the default 10 min); older ones get a fresh TTL at
 * the disconnect.
 */
const TTL_SLACK = 0.01;

export interface SessionKeeperOptions {
  store: SessionStore;
  allocator: ExtranonceAllocator;
  logger: StratumLogger;
  sessionTtlMs: number;
}

/**
 * What lets a session outlive its connection and this process: its copy in Redis (what resume
 * needs: extranonce1, difficulty, version mask) and its extranonce1 claim. The server calls it
 * at every change worth keeping, at a disconnect and on its timer; a session handed to another
 * process or resumed elsewhere is read back from here.
 */
export class SessionKeeper {
  private readonly store: SessionStore;
  private readonly allocator: ExtranonceAllocator;
  private readonly logger: StratumLogger;
  private readonly ttlMs: number;
  /** Claims being detached after their connection left, awaited on close. */
  private readonly detaching = new Set<Promise<void>>();

  constructor(options: SessionKeeperOptions) {
    this.store = options.store;
    this.allocator = options.allocator;
    this.logger = options.logger;
    this.ttlMs = options.sessionTtlMs;
  }

  /** Writes the session to Redis when what resume needs changed since this connection last wrote it. */
  save(conn: Connection): void {
    if (!isResumable(conn.state) || isSavedCurrent(conn.state, conn.saved)) return;
    this.persist(conn).catch((error: unknown) => {
      this.logger.warn({ err: error, sessionId: conn.state.sessionId }, 'stratum: session not saved');
    });
  }

  /** Writes the session to Redis now (a resumable one), remembering what was written. */
  async persist(conn: Connection): Promise<void> {
    const state = conn.state;
    if (!isResumable(state)) return;
    const saved = savedSession(state);
    const now = Date.now();
    conn.saved = saved;
    conn.ttlStartedAt = now;
    try {
      await this.store.save(state, now);
    } catch (error) {
      // Written again at the next change or the disconnect.
      if (conn.saved === saved) conn.saved = null;
      throw error;
    }
  }

  /**
   * At a disconnect: the session is written if it changed, otherwise only its TTL restarted
   * (so it stays resumable `sessionTtlMs` after the disconnect) — and not even that when it
   * was written a moment ago, as for a miner that handshakes and leaves.
   */
  keepResumable(conn: Connection): void {
    const state = conn.state;
    if (!isSavedCurrent(state, conn.saved)) {
      this.save(conn);
      return;
    }
    const now = Date.now();
    if (now - conn.ttlStartedAt <= this.ttlMs * TTL_SLACK) return;
    conn.ttlStartedAt = now;
    this.store.refresh([state]).catch((error: unknown) => {
      this.logger.warn({ err: error, sessionId: state.sessionId }, 'stratum: session not refreshed');
    });
  }

  /** Restarts the TTL of every live session's copy (the server's timer, a third of the TTL). */
  refresh(connections: Iterable<Connection>): void {
    const now = Date.now();
    const states: SessionState[] = [];
    for (const conn of connections) {
      if (conn.saved !== null) conn.ttlStartedAt = now;
      states.push(conn.state);
    }
    this.store.refresh(states).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'stratum: sessions not refreshed');
    });
  }

  /** The connection holding a resumable session left: its extranonce1 stays claimed, held by nobody. */
  detachClaim(state: SessionState): void {
    const detached = this.allocator.detach(state.extranonce1, state.sessionId).catch((error: unknown) => {
      // The claim then names this process until its TTL; a resume elsewhere asks here first.
      this.logger.debug(
        { err: error, sessionId: state.sessionId },
        'stratum: extranonce1 claim not detached',
      );
    });
    this.detaching.add(detached);
    void detached.finally(() => this.detaching.delete(detached));
  }

  /** A session that never mined: nothing worth resuming, its extranonce1 goes back at once. */
  discard(state: SessionState): void {
    Promise.all([
      this.store.discard(state.sessionId),
      this.allocator.release(state.extranonce1, state.sessionId),
    ]).catch((error: unknown) => {
      this.logger.debug({ err: error, sessionId: state.sessionId }, 'stratum: unused session not discarded');
    });
  }

  /** Resolves once every claim being detached is. */
  async settle(): Promise<void> {
    await Promise.all([...this.detaching]);
  }
}
