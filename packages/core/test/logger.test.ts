import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/index.js';

function sink() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('writes JSON lines with the name, level label, base fields and structured fields', () => {
    const { lines, stream } = sink();
    const log = createLogger({ name: 'reporter', level: 'debug', base: { id: 'r1' }, destination: stream });
    log.info({ batchId: 'b1', shares: 3 }, 'batch credited');
    log.child({ chain: 'ltc' }).debug({ hash: 'ab' }, 'block polled');
    log.trace('not written at debug');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      name: 'reporter',
      level: 'info',
      id: 'r1',
      pid: process.pid,
      batchId: 'b1',
      shares: 3,
      msg: 'batch credited',
    });
    expect(typeof lines[0]!.time).toBe('number');
    expect(lines[1]).toMatchObject({ level: 'debug', chain: 'ltc', hash: 'ab', msg: 'block polled' });
  });

  it('refuses an unknown level naming the allowed ones', () => {
    // @ts-expect-error: a level from a config file that is not one
    expect(() => createLogger({ name: 'x', level: 'verbose' })).toThrow(/fatal, error, warn, info/);
  });
});
