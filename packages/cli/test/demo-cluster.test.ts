import { readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { main } from '@hashwire/cli';
import { liveProcesses } from '@hashwire/testkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CapturedOutput, captureOutput } from './capture-output.js';

let output: CapturedOutput;
const logDirs: string[] = [];

beforeEach(() => {
  output = captureOutput({ stderr: false });
});
afterEach(() => {
  vi.restoreAllMocks();
  for (const dir of logDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const lines = () => output.out.split('\n');

const SUMMARY =
  /^demo done after \d+ s: 20 miners · shares (\d+) accepted, (\d+) stale.* · credited (\d+) · blocks (\d+) found, (\d+) accepted.* · height (\d+) · (.*)$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('hashwire demo --redis cluster', () => {
  it('mines on a Redis Cluster of 3 masters and 3 replicas it starts itself, finds blocks, and leaves no process behind', async () => {
    const code = await main(['demo', '--redis', 'cluster', '--duration', '10', '--interval', '2']);
    const dir = lines()
      .map((l) => l.match(/^logs: (\S+)$/)?.[1])
      .find((d) => d !== undefined);
    expect(dir, output.out).toBeDefined();
    logDirs.push(dir!);

    // Step 1 names the six nodes it started, masters first.
    const step1 = lines()
      .map((l) =>
        l.match(
          /^\[1\/4\] Redis Cluster, 3 masters \+ 3 replicas: ((?:127\.0\.0\.1:\d+(?:, )?)+) \(pids ([\d, ]+)\)/,
        ),
      )
      .find((m) => m !== undefined && m !== null);
    expect(step1, output.out).toBeDefined();
    const ports = step1![1]!.split(', ').map((a) => Number(a.split(':')[1]));
    const redisPids = step1![2]!.split(', ').map(Number);
    expect(ports).toHaveLength(6);
    expect(redisPids).toHaveLength(6);

    // The pool config it ran gives the Cluster's nodes, not a URL.
    const pool = JSON.parse(readFileSync(join(dir!, 'pool.json'), 'utf8'));
    expect(pool.redis.url).toBeUndefined();
    expect(pool.redis.cluster.nodes).toEqual(ports.map((port) => ({ host: '127.0.0.1', port })));
    // Where to look reads the Cluster through the config, and redis-cli follows redirections.
    expect(output.out).toContain(`./hashwire status --config ${join(dir!, 'pool.json')}`);
    expect(output.out).toMatch(
      new RegExp(
        `^ {2}redis {7}Redis Cluster 127\\.0\\.0\\.1:${ports[0]}, .* \\(3 masters, 3 replicas\\), keys under hw: \\(blocks: redis-cli -c -p ${ports[0]} hgetall `,
        'm',
      ),
    );

    // It mined: every share a miner saw accepted is credited, and blocks got in.
    expect(code, output.out).toBe(0);
    const summary = lines()
      .map((l) => l.match(SUMMARY))
      .find((m) => m !== null);
    expect(summary, output.out).toBeDefined();
    const [, accepted, , credited, found, blocksAccepted, , left] = summary!;
    expect(Number(accepted)).toBeGreaterThanOrEqual(1);
    expect(Number(credited)).toBeGreaterThanOrEqual(Number(accepted));
    expect(Number(blocksAccepted)).toBeGreaterThanOrEqual(1);
    expect(Number(found)).toBeGreaterThanOrEqual(Number(blocksAccepted));
    expect(left).toBe('no process left');

    // Nothing it started is left: no node process, no port of the Cluster still answering, no
    // service, HAProxy or litecoind.
    const servicePids = lines().flatMap((l) => {
      const m = l.match(/^ {2}(\S+) started \(pid (\d+)\)/);
      return m ? [Number(m[2])] : [];
    });
    expect(servicePids).toHaveLength(8);
    const litecoindPids = [...output.out.matchAll(/node\d http:\/\/\S+ \(pid (\d+)\)/g)].map((m) =>
      Number(m[1]),
    );
    expect(litecoindPids).toHaveLength(2);
    expect(liveProcesses()).toEqual([]);
    expect([...redisPids, ...servicePids, ...litecoindPids].filter(alive)).toEqual([]);
    expect((await Promise.all(ports.map(listening))).some(Boolean)).toBe(false);
  }, 180_000);

  it('refuses an unknown --redis, naming the choices', async () => {
    await expect(main(['demo', '--redis', 'sentinel'])).rejects.toThrow(
      '--redis must be single or cluster, got "sentinel"',
    );
  });
});
