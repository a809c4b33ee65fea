/**
 * Two-step consistent hashing for routing share batches to reporters (why: docs/architecture.md,
 * "Design choices and why").
 *
 * - A fixed number of **buckets** sit on a hash ring, each at many virtual points. An
 *   account hashes to a point; walking clockwise, the first `bucketsPerAccount` distinct
 *   buckets are its subset (e.g. account "eday" → buckets 4, 20, 67).
 * - A worker of that account hashes to one bucket of the subset.
 * - Each bucket lists every server in a fixed order by rendezvous (highest random weight)
 *   hashing of (server, bucket): the first is preferred, the rest are its failover order.
 *
 * Which bucket a key lands in depends only on the bucket layout (`buckets`,
 * `bucketsPerAccount`, `virtualNodes`) and the hash below, never on the servers; so ids
 * derived from buckets stay the same whatever reporters come and go. Changing the layout or
 * the hash moves keys between buckets: treat them as part of the wire contract.
 *
 * With rendezvous ordering, a server joining becomes first for about 1/N of the buckets and
 * displaces nobody else; a server leaving hands only its own buckets to their next server;
 * the relative order of the other servers never changes.
 */
export interface BucketRingOptions {
  /** @defaultValue 100 */
  buckets?: number;
  /** Size of an account's subset of buckets. @defaultValue 3 */
  bucketsPerAccount?: number;
  /** Points of each bucket on the ring; more points, more even spread. @defaultValue 1024 */
  virtualNodes?: number;
}

export const DEFAULT_RING_BUCKETS = 100;
export const DEFAULT_BUCKETS_PER_ACCOUNT = 3;
export const DEFAULT_RING_VIRTUAL_NODES = 1024;

/** Where one share goes: its bucket and the servers of that bucket, preferred first. */
export interface RingRoute {
  bucket: number;
  servers: readonly string[];
}

const encoder = new TextEncoder();

/**
 * MurmurHash3 (x86, 32-bit) of the UTF-8 bytes of `key`. Every process must agree on it:
 * it decides buckets, so changing it changes the ids of batches still in flight.
 */
export function ringHash(key: string, seed = 0): number {
  const bytes = encoder.encode(key);
  const length = bytes.length;
  const blocks = length & ~3;
  let h = seed | 0;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = length & 3;
  if (tail > 0) {
    // The last 1–3 bytes, little-endian, as one partial block.
    let k = bytes[blocks]!;
    if (tail > 1) k ^= bytes[blocks + 1]! << 8;
    if (tail > 2) k ^= bytes[blocks + 2]! << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// Distinct seeds so the account, worker and server hashes are independent of each other.
const ACCOUNT_SEED = 0x61636374;
const WORKER_SEED = 0x776b7272;
const SERVER_SEED = 0x73727672;

interface Layout {
  buckets: number;
  perAccount: number;
  vnodes: number;
  /** Ring points, ascending, and the bucket at each. */
  points: Uint32Array;
  owners: Uint16Array;
}

const layouts = new Map<string, Layout>();
const MAX_RING_POINTS = 1 << 22;

function positiveInt(field: string, value: number | undefined, fallback: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1 || v > max) {
    throw new RangeError(`${field} must be an integer from 1 to ${max}, got ${String(value)}`);
  }
  return v;
}

/** The bucket ring depends only on the layout options: built once per process and shared. */
function layoutFor(options: BucketRingOptions): Layout {
  const buckets = positiveInt('buckets', options.buckets, DEFAULT_RING_BUCKETS, 65535);
  const perAccount = positiveInt(
    'bucketsPerAccount',
    options.bucketsPerAccount,
    DEFAULT_BUCKETS_PER_ACCOUNT,
    buckets,
  );
  const vnodes = positiveInt('virtualNodes', options.virtualNodes, DEFAULT_RING_VIRTUAL_NODES, 65536);
  if (buckets * vnodes > MAX_RING_POINTS) {
    throw new RangeError(
      `buckets × virtualNodes must be at most ${MAX_RING_POINTS}, got ${buckets} × ${vnodes}`,
    );
  }
  const cacheKey = `${buckets}/${perAccount}/${vnodes}`;
  const cached = layouts.get(cacheKey);
  if (cached) return cached;
  // Point and bucket packed in one double (hash × 2^16 + bucket, exact below 2^53), so one
  // numeric sort orders points and breaks ties by bucket number, the same everywhere.
  const packed = new Float64Array(buckets * vnodes);
  let n = 0;
  for (let b = 0; b < buckets; b++) {
    for (let v = 0; v < vnodes; v++) packed[n++] = ringHash(`bucket-${b}#${v}`) * 65536 + b;
  }
  packed.sort();
  const points = new Uint32Array(packed.length);
  const owners = new Uint16Array(packed.length);
  for (let i = 0; i < packed.length; i++) {
    const value = packed[i]!;
    owners[i] = value % 65536;
    points[i] = (value - owners[i]!) / 65536;
  }
  const layout: Layout = { buckets, perAccount, vnodes, points, owners };
  layouts.set(cacheKey, layout);
  return layout;
}

/** Index of the first point at or after `position`, wrapping to 0. */
function firstPointAtOrAfter(points: Uint32Array, position: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]! < position) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}

/**
 * An immutable ring over a set of server ids. Every process given the same ids (in any order,
 * duplicates ignored) and the same options routes every key identically.
 *
 * @example
 * const ring = new BucketRing(['rep-a', 'rep-b', 'rep-c']);
 * const { bucket, servers } = ring.route('eday', 'rig1'); // servers[0] first, then failover
 */
export class BucketRing {
  /** Server ids, sorted. */
  readonly servers: readonly string[];
  readonly bucketCount: number;
  readonly bucketsPerAccount: number;
  private readonly layout: Layout;
  private readonly order: (readonly string[])[];

  constructor(servers: Iterable<string>, options: BucketRingOptions = {}) {
    this.layout = layoutFor(options);
    this.bucketCount = this.layout.buckets;
    this.bucketsPerAccount = this.layout.perAccount;
    this.servers = Object.freeze([...new Set(servers)].sort());
    const weights = this.servers.map((id) => ({ id, seed: ringHash(id, SERVER_SEED) }));
    this.order = [];
    for (let b = 0; b < this.bucketCount; b++) {
      const scored = weights.map(({ id, seed }) => ({ id, score: ringHash(`bucket-${b}`, seed) }));
      scored.sort((x, y) => y.score - x.score || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
      this.order.push(Object.freeze(scored.map((s) => s.id)));
    }
  }

  /** The same layout over another set of servers. */
  withServers(servers: Iterable<string>): BucketRing {
    return new BucketRing(servers, {
      buckets: this.bucketCount,
      bucketsPerAccount: this.bucketsPerAccount,
      virtualNodes: this.layout.vnodes,
    });
  }

  /** The account's subset of buckets, in ring order. */
  accountBuckets(account: string): number[] {
    const { points, owners, perAccount } = this.layout;
    const subset: number[] = [];
    let i = firstPointAtOrAfter(points, ringHash(account, ACCOUNT_SEED));
    while (subset.length < perAccount) {
      const bucket = owners[i]!;
      if (!subset.includes(bucket)) subset.push(bucket);
      i = i + 1 === points.length ? 0 : i + 1;
    }
    return subset;
  }

  /** The one bucket of the account's subset that holds this worker. */
  bucketFor(account: string, worker: string): number {
    const subset = this.accountBuckets(account);
    // Hash the pair: two accounts' workers named "rig1" spread independently.
    return subset[ringHash(`${account}\n${worker}`, WORKER_SEED) % subset.length]!;
  }

  /** Every server, in this bucket's fixed preference order (empty without servers). */
  serversFor(bucket: number): readonly string[] {
    const servers = this.order[bucket];
    if (servers === undefined) {
      throw new RangeError(`bucket must be an integer from 0 to ${this.bucketCount - 1}, got ${bucket}`);
    }
    return servers;
  }

  route(account: string, worker: string): RingRoute {
    const bucket = this.bucketFor(account, worker);
    return { bucket, servers: this.serversFor(bucket) };
  }

  /**
   * Every server that may hold something of the account: the servers of its buckets, each
   * bucket's preferred first. For "list all of an account" queries.
   */
  serversForAccount(account: string): string[] {
    const seen = new Set<string>();
    const buckets = this.accountBuckets(account);
    for (let rank = 0; rank < this.servers.length; rank++) {
      for (const b of buckets) seen.add(this.order[b]![rank]!);
    }
    return [...seen];
  }
}
