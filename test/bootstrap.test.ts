import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('./hashwire', () => {
  it('is quiet and exits 0 when everything is already installed and built', () => {
    // The suite runs after the bootstrap, so everything is present: a second run must
    // neither install anything nor print anything beyond the command's own output.
    const run = spawnSync(`${root}hashwire`, ['help'], { cwd: root, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^usage: hashwire <command>/);
  });

  it('exits 2 with a one-line message for an unknown command', () => {
    const run = spawnSync(`${root}hashwire`, ['frobnicate'], { cwd: root, encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toMatch(
      /^hashwire: unknown command "frobnicate"; commands: test, circusd, demo, bench(, [a-z-]+)*$/,
    );
  });
});
