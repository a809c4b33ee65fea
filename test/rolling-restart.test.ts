import { describe, it } from 'vitest';
import { ROLLING_RESTART, rollingRestart } from './rolling-restart-run.js';

describe('rolling restart with zero loss (issue 8)', () => {
  it(ROLLING_RESTART, () => rollingRestart('single'), 300_000);
});
