import { main } from '@hashwire/cli';
import { liveProcesses } from '@hashwire/testkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

let out: string;
/** Called with the output so far after every write; lets a test wait for a line. */
let onOutput: (() => void) | undefined;

beforeEach(() => {
  out = '';
  onOutput = undefined;
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    onOutput?.();
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const BLOCK_LINE =
  /^height (\d+) {2}([0-9a-f]{64}) {2}txs (\d+) {2}(accepted|rejected.*) {2}\d+(?:\.\d+)? [kM]?H\/s/;

function blockLines(): RegExpMatchArray[] {
  return out
    .split('\n')
    .map((line) => line.match(BLOCK_LINE))
    .filter((m): m is RegExpMatchArray => m !== null);
}

describe('hashwire demo', () => {
  it('says what it is, mines accepted blocks with the chain library, and stops by itself with nothing left', async () => {
    expect(await main(['demo', '--duration', '3'])).toBe(0);

    expect(out).toContain('the pool services (jobmanager, stratum, reporter) are not built yet');
    expect(out).toContain('mines directly with the chain library');
    expect(out).toMatch(/litecoind up in \d+ ms: node0 http:\/\/127\.0\.0\.1:\d+\/ pid \d+/);
    const blocks = blockLines();
    expect(blocks.length).toBeGreaterThanOrEqual(1);
    expect(blocks.every((m) => m[4] === 'accepted')).toBe(true);
    // Consecutive heights, each block with at least the coinbase and the HogEx.
    const heights = blocks.map((m) => Number(m[1]));
    expect(heights).toEqual(heights.map((_, i) => heights[0]! + i));
    expect(blocks.every((m) => Number(m[3]) >= 2)).toBe(true);
    expect(out).toMatch(/node1 followed: both nodes at [0-9a-f]{64}/);
    expect(out).toContain('stopped: no litecoind left');
    expect(liveProcesses()).toEqual([]);
  });

  it('stops everything on Ctrl-C and exits 0', async () => {
    const firstBlock = new Promise<void>((resolve) => {
      onOutput = () => {
        if (blockLines().some((m) => m[4] === 'accepted')) resolve();
      };
    });
    const sigintListeners = process.listenerCount('SIGINT');
    const run = main(['demo', '--interval', '0']);
    await Promise.race([
      firstBlock,
      run.then((code) => {
        throw new Error(`demo ended (exit ${code}) before its first block:\n${out}`);
      }),
    ]);
    process.kill(process.pid, 'SIGINT');
    expect(await run).toBe(0);
    expect(out).toContain('SIGINT: stopping');
    expect(out).toContain('stopped: no litecoind left');
    expect(liveProcesses()).toEqual([]);
    expect(process.listenerCount('SIGINT')).toBe(sigintListeners);
  });

  it('refuses a bad duration with a one-line usage error', async () => {
    await expect(main(['demo', '--duration', 'soon'])).rejects.toThrow(
      '--duration must be a number of seconds above 0, got "soon"',
    );
  });
});
