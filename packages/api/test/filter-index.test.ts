import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createFilterIndex } from '../src/filter-index.js';
import { compileGlob } from '../src/stream-topics.js';

// The stream's topic globs and the index that finds the filters an event may match.

describe('compileGlob', () => {
  it('matches * across dots, anchored at both ends, everything else literally', () => {
    const m = compileGlob('block.*');
    expect(['block.accepted', 'block.a.b'].map(m)).toEqual([true, true]);
    expect(['blocks.accepted', 'block', 'xblock.accepted'].map(m)).toEqual([false, false, false]);
    expect(compileGlob('account.A.*')('account.A.block.accepted')).toBe(true);
    expect(compileGlob('account.A.*')('account.AB.block.accepted')).toBe(false);
    expect(compileGlob('service.*.up')('service.stratum.up')).toBe(true);
    expect(compileGlob('round.closed')('round.closed')).toBe(true);
    expect(compileGlob('round.closed')('roundXclosed')).toBe(false);
    expect(compileGlob('*')('anything.at.all')).toBe(true);
  });
});

describe('createFilterIndex', () => {
  it('finds exactly the globs that match, whatever globs and names', () => {
    const segment = fc.constantFrom('a', 'b', 'block', 'account', 'x1');
    const globPart = fc.oneof(
      segment,
      fc.constant('*'),
      segment.map((s) => `${s}*`),
    );
    const glob = fc.array(globPart, { minLength: 1, maxLength: 4 }).map((p) => p.join('.'));
    const name = fc.array(segment, { minLength: 1, maxLength: 5 }).map((p) => p.join('.'));
    fc.assert(
      fc.property(
        fc.uniqueArray(glob, { maxLength: 12 }),
        fc.array(name, { minLength: 1, maxLength: 2 }),
        (globs, names) => {
          const index = createFilterIndex<string>();
          for (const g of globs) index.set(g, g, g);
          const found = new Set<string>();
          index.visit(names, (g) => {
            if (names.some(compileGlob(g))) found.add(g);
          });
          const expected = globs.filter((g) => names.some(compileGlob(g)));
          expect([...found].sort()).toEqual(expected.sort());
        },
      ),
      { numRuns: 500 },
    );
  });

  it('visits only the nodes along the name, and forgets what was deleted', () => {
    const index = createFilterIndex<string>();
    for (let i = 0; i < 1000; i++) index.set(`account.acct${i}.*`, String(i), `acct${i}`);
    index.set('*', 'all', 'all');
    expect(index.size).toBe(1001);
    const seen: string[] = [];
    index.visit(['account.acct7.worker.online'], (g) => seen.push(g));
    expect(seen).toEqual(['all', 'acct7']);
    index.delete('account.acct7.*', '7');
    index.delete('account.acct7.*', '7');
    expect(index.size).toBe(1000);
    expect(index.get('account.acct7.*', '7')).toBeUndefined();
    const after: string[] = [];
    index.visit(['account.acct7.worker.online'], (g) => after.push(g));
    expect(after).toEqual(['all']);
  });
});
