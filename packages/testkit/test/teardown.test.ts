import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@hashwire/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/teardown-child.ts', import.meta.url));

/** vite-node (a vitest dependency) runs the TypeScript fixture with the workspace aliases. */
function viteNode(): string {
  const vitest = createRequire(path.join(root, 'package.json')).resolve('vitest/package.json');
  const pkg = createRequire(vitest).resolve('vite-node/package.json');
  return path.join(path.dirname(pkg), 'vite-node.mjs');
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

/** Gone, or a zombie nobody reaped yet: either way no longer running. */
function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function startChild(env: Record<string, string>): Promise<{
  child: ChildProcess;
  report: { pids: number[]; dirs: string[] };
}> {
  const child = spawn(process.execPath, [viteNode(), '-c', path.join(root, 'vitest.config.ts'), fixture], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, 'line')) as [string];
  return { child, report: JSON.parse(line) };
}

describe('testkit teardown', () => {
  it('kills daemons and removes their directories when the test process exits without stopping them', async () => {
    const { child, report } = await startChild({ HW_TEARDOWN_MODE: 'exit', HW_TEARDOWN_LITECOIN: '1' });
    expect(report.pids).toHaveLength(3); // redis + two litecoind
    const [code] = await once(child, 'exit');
    expect(code).toBe(3);
    await waitFor(() => report.pids.every(isGone), { timeoutMs: 5_000, what: 'daemons gone' });
    expect(report.dirs.filter((d) => existsSync(d))).toEqual([]);
  });

  it('cleans up through the watchdog when the test process is killed outright', async () => {
    const { child, report } = await startChild({ HW_TEARDOWN_MODE: 'hang' });
    expect(report.pids.every((pid) => !isGone(pid))).toBe(true);
    child.kill('SIGKILL');
    await once(child, 'exit');
    await waitFor(() => report.pids.every(isGone) && !report.dirs.some((d) => existsSync(d)), {
      timeoutMs: 10_000,
      what: 'the watchdog to kill redis and remove its directory',
    });
  });
});
