import { describe, it } from 'vitest';
import { NOTHING_LOST, nothingLost } from './nothing-lost-run.js';

// Issue 16: the same faults with every service on a real Redis Cluster of 3 masters, each with
// a replica; the Redis restart is of the master serving the chain.
describe('nothing lost, nothing doubled on a Redis Cluster (issue 16)', () => {
  it(NOTHING_LOST, () => nothingLost('cluster'), 300_000);
});
