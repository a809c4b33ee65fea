import { parseHaproxyProcesses } from '@hashwire/core';
import { describe, expect, it } from 'vitest';

// `show proc` as HAProxy 2.6.12 (Debian 12) prints it on the master CLI; the reload path itself
// runs against the real HAProxy in testkit's haproxy.test.ts and test/haproxy-reload.test.ts.
const AFTER_RELOADS = `#<PID>          <type>          <reloads>       <uptime>        <version>      
29167           master          3 [failed: 1]   0d00h02m07s     2.6.12-1+deb12u4
# workers
29248           worker          0               0d00h00m00s     2.6.12-1+deb12u4
# old workers
29170           worker          2               0d00h00m43s     2.6.12-1+deb12u4
# programs

`;

describe('parseHaproxyProcesses', () => {
  it('reads the master, the current worker and the old ones', () => {
    expect(parseHaproxyProcesses(AFTER_RELOADS)).toEqual({
      master: {
        pid: 29167,
        reloads: 3,
        failedReloads: 1,
        uptime: '0d00h02m07s',
        version: '2.6.12-1+deb12u4',
      },
      workers: [{ pid: 29248, reloads: 0, uptime: '0d00h00m00s', version: '2.6.12-1+deb12u4' }],
      oldWorkers: [{ pid: 29170, reloads: 2, uptime: '0d00h00m43s', version: '2.6.12-1+deb12u4' }],
    });
  });

  it('refuses what is not a master CLI answer (a worker stats socket, say)', () => {
    expect(() => parseHaproxyProcesses('Unknown command: show proc\n')).toThrow(/not an answer/);
  });
});
