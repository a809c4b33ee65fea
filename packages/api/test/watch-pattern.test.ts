import { describe, expect, it } from 'vitest';
import { compilePattern, parseEndpoint, patternProblem } from '../src/index.js';

describe('watch patterns', () => {
  it('match event names as globs where * takes any run, dots included', () => {
    const cases: [string, string, boolean][] = [
      ['block.*', 'block.accepted', true],
      ['block.*', 'block.', true],
      ['block.*', 'blocks.accepted', false],
      ['block.*', 'round.closed', false],
      ['worker.offline', 'worker.offline', true],
      ['worker.offline', 'worker.offline2', false],
      ['service.stratum.*', 'service.stratum.down', true],
      ['service.*.down', 'service.jobmanager.down', true],
      ['service.*.down', 'service.jobmanager.up', false],
      ['account.LTCaddr1.*', 'account.LTCaddr1.worker.offline', true],
      ['account.LTCaddr1.*', 'account.LTCaddr2.worker.offline', false],
      ['*.offline', 'account.a.worker.offline', true],
      ['*', 'anything.at.all', true],
      ['a*b*a', 'aba', true],
      ['a*b*a', 'ab', false],
      ['a*aa', 'aaa', true],
      ['a*aa', 'aa', false],
      ['*x*y*z*', 'zzyyxx', false],
      ['*x*y*z*', 'axbyczd', true],
    ];
    for (const [pattern, name, expected] of cases)
      expect(compilePattern(pattern)(name), `${pattern} ~ ${name}`).toBe(expected);
  });

  it('costs one pass over the name, however hostile the name', () => {
    // prefix and suffix fit, so the middle parts are searched: a backtracking matcher would try
    // every placement of the two a's before failing on x (n² and worse)
    const match = compilePattern('*a*a*x*b');
    const name = `${'a'.repeat(100_000)}b`;
    const started = performance.now();
    for (let i = 0; i < 100; i++) expect(match(name)).toBe(false);
    // 100 scans of 100 kB: a backtracking matcher would take hours here
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('says what is wrong with a refused pattern', () => {
    expect(patternProblem('block.*')).toBeNull();
    expect(patternProblem('*a*b*c*d*')).toMatch(/5 wildcards/);
    expect(patternProblem('a**')).toMatch(/two wildcards in a row/);
    expect(patternProblem('a?')).toMatch(/only A-Z/);
    expect(patternProblem('x'.repeat(201))).toMatch(/at most 200/);
  });
});

describe('watch endpoints', () => {
  it('have one canonical form, and never show a password', () => {
    const forms: [string, string, string][] = [
      ['HTTP://Example.COM:80/hook', 'http://example.com/hook', 'http://example.com/hook'],
      ['https://u:p%40ss@h/x?y=1', 'https://u:p%40ss@h/x?y=1', 'https://u:***@h/x?y=1'],
      [
        'redis://:s3cret@Redis.local/ev',
        'redis://:s3cret@redis.local:6379/0/ev',
        'redis://:***@redis.local:6379/0/ev',
      ],
      ['redis://h:7000/3/ev', 'redis://h:7000/3/ev', 'redis://h:7000/3/ev'],
      [
        'amqp://guest:guest@rabbit/%2F/pool',
        'amqp://guest:guest@rabbit:5672/%2F/pool',
        'amqp://guest:***@rabbit:5672/%2F/pool',
      ],
      [
        'mysql://app:pw@db/pool/watch_events',
        'mysql://app:pw@db:3306/pool/watch_events',
        'mysql://app:***@db:3306/pool/watch_events',
      ],
      ['ws', 'ws', 'ws'],
    ];
    for (const [text, canonical, shown] of forms) {
      const e = parseEndpoint(text);
      expect(e.canonical, text).toBe(canonical);
      expect(e.shown, text).toBe(shown);
    }
    expect(parseEndpoint('amqp://guest:guest@rabbit/%2F/pool')).toMatchObject({
      connectUrl: 'amqp://guest:guest@rabbit:5672/%2F',
      exchange: 'pool',
    });
  });
});
