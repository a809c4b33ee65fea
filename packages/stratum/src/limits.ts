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
   * Ban an address whose sessions send this fraction of bad shares (invalid, low
   * difficulty, duplicate; stale shares are normal around a block and do not count)…
   * @defaultValue 0.5
   */
  banInvalidRatio?: number;
  /**
   * …judged once a window holds this many shares (the window then starts over).
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

/** Per-address connection counts and temporary bans. */
export class AddressLimiter {
  private readonly counts = new Map<string, number>();
  private readonly bans = new Map<string, number>();
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
    if (count <= 1) this.counts.delete(ip);
    else this.counts.set(ip, count - 1);
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

  /** Drops expired bans (called from the sweep). */
  sweep(now: number): void {
    for (const [ip, until] of this.bans) if (until <= now) this.bans.delete(ip);
  }

  stats(): { addresses: number; connections: number; bans: number } {
    return { addresses: this.counts.size, connections: this.total, bans: this.bans.size };
  }

  connectionsFrom(ip: string): number {
    return this.counts.get(ip) ?? 0;
  }
}
