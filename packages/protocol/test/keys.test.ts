import { createKeyBuilder } from '@hashwire/protocol';
import { describe, expect, it } from 'vitest';

function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}

describe('key builder', () => {
  it('prefixes every key, default hw:', () => {
    const keys = createKeyBuilder();
    expect(keys.service('stratum', 's1')).toBe('hw:svc:{stratum}:s1');
    expect(keys.session('ltc', 'abc')).toBe('hw:sess:{ltc}:abc');
    expect(createKeyBuilder({ prefix: 't42:' }).job('ltc', 'j1')).toBe('t42:job:{ltc}:j1');
  });

  it('keeps keys used by one script in the same cluster hash slot', () => {
    const keys = createKeyBuilder({ prefix: 'x:' });
    expect(hashTag(keys.service('stratum', 'a'))).toBe(hashTag(keys.serviceIndex('stratum')));
    expect(hashTag(keys.lease('jm:ltc'))).toBe(hashTag(keys.leaseEpoch('jm:ltc')));
    expect(hashTag(keys.round('ltc'))).toBe(hashTag(keys.blocks('ltc')));
    expect(hashTag(keys.blocks('ltc'))).toBe(hashTag(keys.blocksIndex('ltc')));
    expect(hashTag(keys.group('g', 'members'))).toBe(hashTag(keys.group('g', 'version')));
    expect(hashTag(keys.round('ltc'))).not.toBe(hashTag(keys.round('btc')));
  });

  it("puts every key of a chain in that chain's slot: jobs, sessions, claims, rounds, blocks, shares, events", () => {
    const keys = createKeyBuilder({ prefix: 'x:' });
    const hash = 'ab'.repeat(32);
    const perChain = [
      keys.session('ltc', '0123456789abcdef'),
      keys.extranonce1('ltc', 'deadbeef'),
      keys.job('ltc', '1f'),
      keys.template('ltc', 't1'),
      keys.latestJob('ltc'),
      keys.jobSequence('ltc'),
      keys.spoolAcks('ltc', 'spool-1'),
      keys.accountHashrate('ltc', 123),
      keys.shareSeen('ltc', '1f'),
      keys.round('ltc'),
      keys.closedRound('ltc', hash),
      keys.workers('ltc'),
      keys.hashrate('ltc', 5, 123),
      keys.shareLog('ltc'),
      keys.blocks('ltc'),
      keys.blocksIndex('ltc'),
      keys.candidates('ltc'),
      keys.events('ltc'),
      keys.replicationProbe('ltc'),
    ];
    expect(new Set(perChain.map(hashTag))).toEqual(new Set(['ltc']));
    // All different keys.
    expect(new Set(perChain).size).toBe(perChain.length);
    expect(() => keys.closedRound('ltc', 'xyz')).toThrow(/block hash "xyz"/);
  });

  it('refuses key parts that would break the key space, naming the field', () => {
    const keys = createKeyBuilder();
    expect(() => keys.session('ltc', 'a b')).toThrow(/sessionId "a b"/);
    expect(() => keys.group('x}{y', 'm')).toThrow(/group/);
    expect(() => createKeyBuilder({ prefix: '{p}' })).toThrow(/prefix/);
  });
});
