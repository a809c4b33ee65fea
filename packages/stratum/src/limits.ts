/** Abuse control: how much one connection and one address may cost us. */
export interface LimitOptions {
  /**
   * Longest request line; a longer one closes the connection.
   * @defaultValue 16384
   */
  maxLineBytes?: number;
  /**
   * Output buffered for a miner that does not read; past it the connection is closed.
   * @defaultValue 262144
   */
  maxOutputBytes?: number;
  /**
   * Time from connect to a successful `mining.authorize` (slowloris, idle scanners).
   * @defaultValue 20000
   */
  authTimeoutMs?: number;
  /**
   * Time an authorized session may go without a submit.
   * @defaultValue 600000
   */
  idleTimeoutMs?: number;
  /**
   * Open connections per client address (the real one from a PROXY header). 0: no limit.
   * @defaultValue 256
   */
  maxConnectionsPerIp?: number;
  /**
   * Open connections in this process. 0: no limit.
   * @defaultValue 0
   */
  maxConnections?: number;
  /**
   * Malformed requests (bad JSON, wrong types, unknown methods) before the connection is closed.
   * @defaultValue 20
   */
  maxProtocolErrors?: number;
  /**
   * Workers one connection may authorize.
   * @defaultValue 16
   */
  maxWorkersPerConnection?: number;
  /**
   * Submits of one connection waiting for their answer (being judged or written to the
   * spool). One more is answered with an error at once, and counts as a bad share toward the
   * ban, instead of queuing without bound. 0: no limit.
   * @defaultValue 128
   */
  maxSubmitsInFlight?: number;
  /**
   * Ban an address whose sessions send this fraction of bad submits: invalid, low
   * difficulty, duplicate, on a job never sent or long gone, malformed (wrong types or
   * shape, an unauthorized worker) or past `maxSubmitsInFlight`. Stale shares (a job a new
   * block superseded) are normal around a block and do not count…
   * @defaultValue 0.5
   */
  banInvalidRatio?: number;
  /**
   * …judged once an address's window holds this many submits (the window then starts over).
   * The window is the address's, not the connection's: reconnecting does not start it over.
   * @defaultValue 40
   */
  banCheckShares?: number;
  /**
   * How long a ban lasts; 0 disables banning.
   * @defaultValue 600000
   */
  banDurationMs?: number;
}

export type ResolvedLimitOptions = Required<LimitOptions>;

export function resolveLimitOptions(options: LimitOptions = {}): ResolvedLimitOptions {
  const resolved: ResolvedLimitOptions = {
    maxLineBytes: options.maxLineBytes ?? 16_384,
    maxOutputBytes: options.maxOutputBytes ?? 262_144,
    authTimeoutMs: options.authTimeoutMs ?? 20_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 600_000,
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? 256,
    maxConnections: options.maxConnections ?? 0,
    maxProtocolErrors: options.maxProtocolErrors ?? 20,
    maxWorkersPerConnection: options.maxWorkersPerConnection ?? 16,
    maxSubmitsInFlight: options.maxSubmitsInFlight ?? 128,
    banInvalidRatio: options.banInvalidRatio ?? 0.5,
    banCheckShares: options.banCheckShares ?? 40,
    banDurationMs: options.banDurationMs ?? 600_000,
  };
  for (const [field, value] of Object.entries(resolved)) {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`limits.${field} must be a number ≥ 0, got ${value}`);
    }
  }
  for (const field of ['maxLineBytes', 'maxOutputBytes', 'authTimeoutMs', 'idleTimeoutMs'] as const) {
    if (resolved[field] <= 0)
      throw new RangeError(`limits.${field} must be positive, got ${resolved[field]}`);
  }
  if (resolved.banInvalidRatio > 1) {
    throw new RangeError(`limits.banInvalidRatio must be from 0 to 1, got ${resolved.banInvalidRatio}`);
  }
  return resolved;
}

/**
 * How long an address's ban window is kept after its last connection closed, when it holds
 * bad submits: a client that reconnects after each close keeps its score.
 */
const IDLE_WINDOW_MS = 60_000;

/** Submits of one address judged in the current ban window. */
interface BanWindow {
  checked: number;
  bad: number;
  touchedAt: number;
}

/** Per-address connection counts, ban score windows and temporary bans. */
export class AddressLimiter {
  private readonly counts = new Map<string, number>();
  private readonly bans = new Map<string, number>();
  private readonly windows = new Map<string, BanWindow>();
  private total = 0;

  constructor(private readonly limits: ResolvedLimitOptions) {}

  /** Why `ip` may not open another connection now, or null when it may (and it is counted). */
  admit(ip: string, now: number): 'banned' | 'per-ip-limit' | 'server-full' | null {
    const until = this.bans.get(ip);
    if (until !== undefined) {
      if (until > now) return 'banned';
      this.bans.delete(ip);
    }
    if (this.limits.maxConnections > 0 && this.total >= this.limits.maxConnections) return 'server-full';
    const count = this.counts.get(ip) ?? 0;
    if (this.limits.maxConnectionsPerIp > 0 && count >= this.limits.maxConnectionsPerIp)
      return 'per-ip-limit';
    this.counts.set(ip, count + 1);
    this.total++;
    return null;
  }

  release(ip: string): void {
    const count = this.counts.get(ip);
    if (count === undefined) return;
    this.total--;
    if (count <= 1) {
      this.counts.delete(ip);
      // An address that sent nothing bad leaves no trace; one that did keeps its score a while.
      if ((this.windows.get(ip)?.bad ?? 0) === 0) this.windows.delete(ip);
    } else {
      this.counts.set(ip, count - 1);
    }
  }

  /**
   * Counts one judged submit of `ip` toward its ban window. When the window is full
   * (`banCheckShares`) it is judged and starts over: returns the bad ratio when that bans the
   * address (the ban is recorded), otherwise null.
   */
  score(ip: string, bad: boolean, now: number): number | null {
    const { banCheckShares, banInvalidRatio, banDurationMs } = this.limits;
    let window = this.windows.get(ip);
    if (!window) {
      window = { checked: 0, bad: 0, touchedAt: now };
      this.windows.set(ip, window);
    }
    window.checked++;
    if (bad) window.bad++;
    window.touchedAt = now;
    if (window.checked < banCheckShares) return null;
    const ratio = window.bad / window.checked;
    window.checked = 0;
    window.bad = 0;
    if (banDurationMs > 0 && banInvalidRatio > 0 && ratio >= banInvalidRatio) {
      this.ban(ip, now);
      return ratio;
    }
    return null;
  }

  ban(ip: string, now: number): number {
    const until = now + this.limits.banDurationMs;
    this.bans.set(ip, until);
    return until;
  }

  isBanned(ip: string, now: number): boolean {
    const until = this.bans.get(ip);
    return until !== undefined && until > now;
  }

  /** Drops expired bans and the windows of addresses gone for a while (called from the sweep). */
  sweep(now: number): void {
    for (const [ip, until] of this.bans) if (until <= now) this.bans.delete(ip);
    for (const [ip, window] of this.windows) {
      if (!this.counts.has(ip) && now - window.touchedAt > IDLE_WINDOW_MS) this.windows.delete(ip);
    }
  }

  stats(): { addresses: number; connections: number; bans: number } {
    return { addresses: this.counts.size, connections: this.total, bans: this.bans.size };
  }

  connectionsFrom(ip: string): number {
    return this.counts.get(ip) ?? 0;
  }
}
