import { describe, expect, it } from 'vitest';
import { type PoolSample, StallWatch, blockSummary, formatSummary } from '../src/demo-status.js';

const base: PoolSample = {
  elapsedMs: 60_000,
  miners: 20,
  connected: 20,
  authorized: 20,
  hashesPerSecond: 4000,
  accepted: 120,
  stale: 2,
  rejected: 0,
  credited: 120,
  candidates: 0,
  blocksFound: 0,
  blocksAccepted: 0,
  blocksStale: 0,
  blocksOrphaned: 0,
  blocksRejected: 0,
  blocksUnanswered: 0,
  height: 600,
};

describe('demo status', () => {
  it('counts every candidate the miners found, and calls each block what it was: accepted, stale, orphaned, rejected, unanswered', () => {
    // 12 candidates; the jobmanagers recorded 10 (one still `submitted`): 3 have no verdict.
    const blocks = blockSummary({ accepted: 4, confirmed: 1, stale: 3, orphaned: 1, submitted: 1 }, 12);
    expect(blocks).toEqual({
      blocksFound: 12,
      blocksAccepted: 5,
      blocksStale: 3,
      blocksOrphaned: 1,
      blocksRejected: 0,
      blocksUnanswered: 3,
    });
    expect(formatSummary({ ...base, ...blocks }, 'no process left')).toContain(
      'blocks 12 found, 5 accepted, 3 stale (their parent was no longer the tip), 1 orphaned (a sibling won the race), 3 unanswered (no jobmanager gave a verdict)',
    );
    // Records the miners did not count (a share not stored, say) still count as found.
    expect(blockSummary({ accepted: 2 }, 1)).toMatchObject({ blocksFound: 2, blocksUnanswered: 0 });
  });

  it('a height that does not rise for the bound is a stall, said in words', () => {
    const watch = new StallWatch(60_000);
    expect(watch.observe(578, 0)).toBeNull();
    expect(watch.observe(578, 59_999)).toBeNull();
    expect(watch.observe(579, 59_999)).toBeNull();
    expect(watch.observe(579, 100_000)).toBeNull();
    expect(watch.observe(579, 120_000)).toBe(
      'the chain stalled: height stayed at 579 for 60 s while the miners mined',
    );
  });
});
