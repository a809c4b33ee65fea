import { describe, it } from 'vitest';
import { NOTHING_LOST, nothingLost } from './nothing-lost-run.js';

describe('nothing lost, nothing doubled (issue 7)', () => {
  it(NOTHING_LOST, () => nothingLost('single'), 300_000);
});
