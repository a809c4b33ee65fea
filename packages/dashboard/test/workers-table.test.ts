import { describe, expect, it } from 'vitest';
import { type TableState, type WorkerRow, visibleRows } from '../src/workers-table.js';

// The miner page's table logic on 1,000 workers: filter, sort, page (the DOM is the e2e test's).

function worker(i: number): WorkerRow {
  return {
    name: `rig${String(i).padStart(4, '0')}`,
    online: i % 3 !== 0,
    lastShareMs: 1_000_000 + i,
    hashrate: { '1m': i, '5m': (i * 7919) % 1000, '60m': i },
    accepted: i * 2,
    stale: i % 5,
    rejected: i % 7,
    duplicate: 0,
    lowdiff: i % 7,
    invalid: 0,
    acceptedDiff: i / 2,
  };
}
const rows = Array.from({ length: 1000 }, (_, i) => worker(i));
const base: TableState = { sort: 'name', descending: false, filter: '', show: 'all', page: 0, pageSize: 50 };

describe('visibleRows', () => {
  it('pages 1,000 workers by name, the last page short, a page past the end clamped to the last', () => {
    const first = visibleRows(rows, base);
    expect(first.pages).toBe(20);
    expect(first.matching).toBe(1000);
    expect(first.items.map((w) => w.name).slice(0, 2)).toEqual(['rig0000', 'rig0001']);
    const last = visibleRows(rows, { ...base, pageSize: 300, page: 99 });
    expect(last.pages).toBe(4);
    expect(last.items).toHaveLength(100);
    expect(last.items.at(-1)!.name).toBe('rig0999');
  });

  it('sorts by any column both ways, ties by name, without touching the rows given', () => {
    const before = rows.map((w) => w.name);
    const byRate = visibleRows(rows, { ...base, sort: 'hashrate', descending: true, pageSize: 1000 }).items;
    for (let i = 1; i < byRate.length; i++) {
      const a = byRate[i - 1]!;
      const b = byRate[i]!;
      expect(
        a.hashrate['5m'] > b.hashrate['5m'] || (a.hashrate['5m'] === b.hashrate['5m'] && a.name < b.name),
      ).toBe(true);
    }
    expect(visibleRows(rows, { ...base, sort: 'accepted', descending: false }).items[0]!.name).toBe(
      'rig0000',
    );
    expect(visibleRows(rows, { ...base, sort: 'name', descending: true }).items[0]!.name).toBe('rig0999');
    // Offline first when ascending by state.
    expect(visibleRows(rows, { ...base, sort: 'online' }).items.every((w) => !w.online)).toBe(true);
    expect(rows.map((w) => w.name)).toEqual(before);
  });

  it('filters by name (case-insensitive, trimmed) and by state', () => {
    const named = visibleRows(rows, { ...base, filter: '  RIG099 ' });
    expect(named.items.map((w) => w.name)).toEqual([
      'rig0990',
      'rig0991',
      'rig0992',
      'rig0993',
      'rig0994',
      'rig0995',
      'rig0996',
      'rig0997',
      'rig0998',
      'rig0999',
    ]);
    const offline = visibleRows(rows, { ...base, show: 'offline', pageSize: 1000 });
    expect(offline.matching).toBe(334);
    expect(offline.items.every((w) => !w.online)).toBe(true);
    const none = visibleRows(rows, { ...base, filter: 'nothing' });
    expect(none).toEqual({ items: [], matching: 0, pages: 1 });
  });
});
