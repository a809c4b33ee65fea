import { describe, expect, it } from 'vitest';
import { BucketRing, ringHash } from '../src/ring.js';

const servers = (n: number, prefix = 'reporter-') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** Many accounts with a few workers each, as (account, worker) pairs. */
function* keys(accounts: number, workersPerAccount: number): Generator<[string, string]> {
  for (let a = 0; a < accounts; a++) {
    for (let w = 0; w < workersPerAccount; w++) yield [`ltc1qacct${a}`, `rig${w}`];
  }
}

describe('ring hash', () => {
  it('is MurmurHash3 x86 32-bit over UTF-8 (every process and version must agree)', () => {
    expect(ringHash('')).toBe(0);
    expect(ringHash('', 1)).toBe(0x514e28b7);
    expect(ringHash('hello')).toBe(0x248bfa47);
    expect(ringHash('The quick brown fox jumps over the lazy dog')).toBe(0x2e4ff723);
    expect(ringHash('é')).toBe(ringHash('\u00e9'));
    expect(ringHash('é')).not.toBe(ringHash('e'));
  });
});

describe('bucket ring', () => {
  it('routes an account to a small subset of buckets and each worker to one of them', () => {
    const ring = new BucketRing(servers(5));
    const subset = ring.accountBuckets('eday');
    expect(subset).toHaveLength(3);
    expect(new Set(subset).size).toBe(3);
    const used = new Set<number>();
    for (let w = 0; w < 200; w++) {
      const bucket = ring.bucketFor('eday', `rig${w}`);
      expect(subset).toContain(bucket);
      used.add(bucket);
    }
    expect(used.size).toBe(3); // a big account spreads over its whole subset
    const { bucket, servers: order } = ring.route('eday', 'rig1');
    expect(order).toEqual(ring.serversFor(bucket));
    expect(ring.serversForAccount('eday').sort()).toEqual(ring.servers);
  });

  it('puts keys in the same buckets as every earlier version (sub-batch ids depend on it)', () => {
    // Pinned: if these change, batches in flight across an upgrade get new ids.
    const ring = new BucketRing([]);
    expect(ring.accountBuckets('eday')).toEqual(PINNED.edayBuckets);
    expect(ring.bucketFor('eday', 'test_queue/msg_1')).toBe(PINNED.edayMsgBucket);
    expect(new BucketRing(['10.0.0.1', '10.0.0.2', '10.0.0.3']).serversFor(20)).toEqual(PINNED.bucket20Order);
  });

  it('spreads many accounts and workers evenly: every one of 100 buckets within ±10 % of the mean', () => {
    const ring = new BucketRing(servers(3));
    const counts = new Array<number>(ring.bucketCount).fill(0);
    let total = 0;
    for (const [account, worker] of keys(100_000, 5)) {
      counts[ring.bucketFor(account, worker)]!++;
      total++;
    }
    const mean = total / ring.bucketCount;
    expect(ring.bucketCount).toBe(100);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(mean * 0.9);
    expect(Math.max(...counts)).toBeLessThanOrEqual(mean * 1.1);
  });

  it('moves about 1/N of the keys when a server joins, and only to the newcomer', () => {
    const base = new BucketRing(servers(10));
    const sample = [...keys(4000, 5)].map(([a, w]) => base.route(a, w));
    let movedTotal = 0;
    const joins = 20;
    for (let j = 0; j < joins; j++) {
      const newcomer = `joiner-${j}`;
      const grown = base.withServers([...base.servers, newcomer]);
      let moved = 0;
      for (const { bucket, servers: before } of sample) {
        const first = grown.serversFor(bucket)[0];
        if (first === before[0]) continue;
        moved++;
        expect(first).toBe(newcomer);
      }
      // Per join the share is coarse (whole buckets move); a single join stays under 2/N.
      expect(moved / sample.length).toBeLessThan(2 / 11);
      movedTotal += moved / sample.length;
    }
    const average = movedTotal / joins;
    expect(average).toBeGreaterThan((1 / 11) * 0.75);
    expect(average).toBeLessThan((1 / 11) * 1.25);
  });

  it('lists servers in the same failover order whatever the input order, on every bucket', () => {
    const ids = servers(7);
    const a = new BucketRing(ids);
    const b = new BucketRing([...ids].reverse().concat(ids[3]!, ids[0]!)); // shuffled, duplicates
    expect(b.servers).toEqual(a.servers);
    const firsts = new Set<string>();
    for (let bucket = 0; bucket < a.bucketCount; bucket++) {
      const order = a.serversFor(bucket);
      expect(b.serversFor(bucket)).toEqual(order);
      expect([...order].sort()).toEqual(a.servers);
      firsts.add(order[0]!);
    }
    expect(firsts.size).toBe(7); // every server leads some buckets
  });

  it('keeps every other route and the relative order when an unrelated server leaves', () => {
    const full = new BucketRing(servers(8));
    const gone = 'reporter-5';
    const shrunk = full.withServers(full.servers.filter((s) => s !== gone));
    let kept = 0;
    for (let bucket = 0; bucket < full.bucketCount; bucket++) {
      const before = full.serversFor(bucket);
      const after = shrunk.serversFor(bucket);
      expect(after).toEqual(before.filter((s) => s !== gone));
      if (before[0] !== gone) {
        expect(after[0]).toBe(before[0]);
        kept++;
      }
    }
    expect(kept).toBeGreaterThan(full.bucketCount / 2);
  });

  it('routes to buckets even with no servers, and refuses a bad layout naming the option', () => {
    const empty = new BucketRing([]);
    const { bucket, servers: order } = empty.route('acct', 'w');
    expect(bucket).toBeGreaterThanOrEqual(0);
    expect(order).toEqual([]);
    expect(() => empty.serversFor(100)).toThrow(/bucket must be an integer from 0 to 99/);
    expect(() => new BucketRing([], { buckets: 0 })).toThrow(/buckets must be an integer/);
    expect(() => new BucketRing([], { buckets: 10, bucketsPerAccount: 11 })).toThrow(/bucketsPerAccount/);
    expect(() => new BucketRing([], { virtualNodes: 1.5 })).toThrow(/virtualNodes/);
    const small = new BucketRing(['x'], { buckets: 4, bucketsPerAccount: 4, virtualNodes: 8 });
    expect(small.accountBuckets('a').sort()).toEqual([0, 1, 2, 3]);
  });
});

const PINNED = {
  edayBuckets: [81, 99, 38],
  edayMsgBucket: 38,
  bucket20Order: ['10.0.0.3', '10.0.0.2', '10.0.0.1'],
};
