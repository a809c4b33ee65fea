import { describe, it } from 'vitest';
import { ROLLING_RESTART, rollingRestart } from './rolling-restart-run.js';

// Issue 16: the same rolling restart with every service on a real Redis Cluster of 3 masters,
// each with a replica (credits acknowledged once a replica has them).
describe('rolling restart with zero loss on a Redis Cluster (issue 16)', () => {
  it(ROLLING_RESTART, () => rollingRestart('cluster'), 300_000);
});
