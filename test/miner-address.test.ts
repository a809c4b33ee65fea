import { describe, expect, it } from 'vitest';
import { minerAddress } from './miner-address.js';

// The pool tests give each sim miner its own loopback address (a stratum server limits
// connections per address): 1,000 miners need more than 127.0.0.x holds.
describe('sim miner addresses', () => {
  it('are 127.0.0.n up to 255, then go on in 127.0.2.x onwards, every one distinct', () => {
    expect(minerAddress(2)).toBe('127.0.0.2');
    expect(minerAddress(255)).toBe('127.0.0.255');
    expect(minerAddress(256)).toBe('127.0.2.1');
    expect(minerAddress(509)).toBe('127.0.2.254');
    expect(minerAddress(510)).toBe('127.0.3.1');
    const many = Array.from({ length: 5000 }, (_, i) => minerAddress(i + 1));
    expect(new Set(many).size).toBe(many.length);
    for (const address of many.slice(255)) expect(address).toMatch(/^127\.0\.([2-9]|[1-9]\d+)\.([1-9]\d*)$/);
    expect(many.some((a) => a.startsWith('127.0.1.'))).toBe(false);
    expect(() => minerAddress(0)).toThrow(RangeError);
  });
});
