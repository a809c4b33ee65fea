import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BlockTemplate } from '@hashwire/chain';
import { LitecoinNode, WALLET_NAME } from './litecoin-node.js';
import { makeTempDir } from './process.js';
import { waitFor } from './wait.js';

/** Bump when the recipe below changes: cached chains of older versions are ignored. */
export const GOLDEN_CHAIN_VERSION = 1;
/** The golden chain's nodes (each with its own wallet). */
export const GOLDEN_NODES = 2;
/** Regtest MWEB activates at 432; the block at this height is the first one that needs a peg-in. */
export const MWEB_PEGIN_HEIGHT = 431;
/** Height of the golden chain's tip: MWEB active and 101 blocks on top of its first block. */
export const GOLDEN_HEIGHT = MWEB_PEGIN_HEIGHT + 1 + 101;

export interface GoldenChain {
  /** Directory holding `node0`, `node1`, ... datadirs (never start a daemon on these: copy them). */
  dir: string;
  datadirs: string[];
  height: number;
  /** ms spent building it; 0 when it came from the cache. */
  buildMs: number;
}

const run = promisify(execFile);
const LOCK_STALE_MS = 10 * 60_000;

/** `<workspace>/node_modules/.cache/hashwire`, or `$HASHWIRE_CACHE_DIR`. */
export function cacheDir(): string {
  if (process.env.HASHWIRE_CACHE_DIR) return process.env.HASHWIRE_CACHE_DIR;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'pnpm-workspace.yaml'))) {
      return path.join(dir, 'node_modules', '.cache', 'hashwire');
    }
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error('testkit: no pnpm workspace above the testkit; set HASHWIRE_CACHE_DIR');
    dir = parent;
  }
}

async function litecoindVersion(binary: string): Promise<string> {
  // Debian's wrapper creates ~/.litecoin even for -version: give it a throwaway home.
  const home = await makeTempDir('version-home');
  const { stdout } = await run(binary, ['-version'], { env: { ...process.env, HOME: home } }).finally(() =>
    rm(home, { recursive: true, force: true }),
  );
  const match = stdout.match(/version (\S+)/);
  if (!match?.[1]) throw new Error(`cannot read the version of ${binary}: ${stdout.slice(0, 200)}`);
  return match[1].replace(/[^A-Za-z0-9._-]/g, '_');
}

/**
 * The regtest chain every litecoin test starts from, built once per machine and litecoind
 * version: MWEB active (height 533), both nodes with a wallet holding mature coins. Parallel
 * callers (test files in other processes) wait for one build behind a lock directory.
 */
export async function goldenChain(binary = 'litecoind'): Promise<GoldenChain> {
  const root = cacheDir();
  const dir = path.join(root, `litecoin-golden-${await litecoindVersion(binary)}-v${GOLDEN_CHAIN_VERSION}`);
  const lock = `${dir}.lock`;
  const result = (buildMs: number): GoldenChain => ({
    dir,
    datadirs: Array.from({ length: GOLDEN_NODES }, (_, i) => path.join(dir, `node${i}`)),
    height: GOLDEN_HEIGHT,
    buildMs,
  });
  await mkdir(root, { recursive: true });
  return waitFor(
    async () => {
      if (existsSync(dir)) return result(0);
      if (!(await takeLock(lock))) return undefined;
      try {
        if (existsSync(dir)) return result(0);
        const started = Date.now();
        await build(binary, dir);
        return result(Date.now() - started);
      } finally {
        await rm(lock, { recursive: true, force: true });
      }
    },
    { timeoutMs: 10 * 60_000, intervalMs: 200, what: `the golden chain in ${dir}` },
  );
}

/** mkdir is atomic: whoever creates the lock directory builds. A lock whose owner died is taken over. */
async function takeLock(lock: string): Promise<boolean> {
  try {
    await mkdir(lock);
    await writeFile(path.join(lock, 'owner'), `${process.pid} ${Date.now()}`);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const owner = await readFile(path.join(lock, 'owner'), 'utf8').catch(() => '');
  const [pid, since] = owner.split(' ').map(Number);
  const ownerDead = pid !== undefined && pid > 0 && !isAlive(pid);
  const tooOld = since !== undefined && since > 0 && Date.now() - since > LOCK_STALE_MS;
  if (ownerDead || tooOld) await rm(lock, { recursive: true, force: true });
  return false;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The recipe (docs/architecture.md, "Facts the code relies on"): mine to 431, pay coins to a
 * wallet MWEB address (the first MWEB block must carry a peg-in, otherwise even
 * generatetoaddress fails with bad-txns-vin-empty), mine one block, then 101 more so coinbases
 * are spendable.
 */
async function build(binary: string, target: string): Promise<void> {
  // Built next to its final place so the last step is one atomic rename (no cross-device move).
  const staging = `${target}.tmp-${process.pid}`;
  await removeAbandonedBuilds(target);
  await rm(staging, { recursive: true, force: true });
  const home = await makeTempDir('golden-home');
  const nodes = Array.from(
    { length: GOLDEN_NODES },
    (_, i) => new LitecoinNode({ name: `golden${i}`, datadir: path.join(staging, `node${i}`), home, binary }),
  );
  let done = false;
  try {
    await Promise.all(nodes.map((n) => n.start()));
    const [n0, n1] = nodes as [LitecoinNode, LitecoinNode];
    await n0.rpc.call('addnode', [n1.p2pAddress, 'onetry']);
    await waitFor(async () => (await n1.rpc.call<number>('getconnectioncount')) > 0, {
      what: 'golden peers',
    });
    for (const n of nodes) {
      // Loaded again on every start from settings.json.
      await n.rpc.call('createwallet', [WALLET_NAME, false, false, '', false, false, true]);
    }
    await n1.mine(50);
    await n0.mine(MWEB_PEGIN_HEIGHT - 50);
    const mwebAddress = await n0.rpc.call<string>('getnewaddress', ['', 'mweb']);
    await n0.rpc.call('sendtoaddress', [mwebAddress, 1]);
    await n0.mine(1);
    await n0.mine(GOLDEN_HEIGHT - MWEB_PEGIN_HEIGHT - 1);
    const tip = await n0.rpc.getBestBlockHash();
    await waitFor(async () => (await n1.rpc.getBestBlockHash()) === tip, { what: 'golden nodes in sync' });
    const template: BlockTemplate = await n0.rpc.getBlockTemplate();
    if (!template.mweb || !template.rules?.includes('mweb')) {
      throw new Error('golden chain: MWEB is not active after the recipe');
    }
    for (const exit of await Promise.all(nodes.map((n) => n.stop()))) {
      // A killed daemon may not have flushed its chain state: never cache that.
      if (exit?.code !== 0)
        throw new Error(`a golden node did not shut down cleanly: ${JSON.stringify(exit)}`);
    }
    for (const n of nodes) {
      const net = path.join(n.datadir, 'regtest');
      // Nothing that names this build's ports or processes, nor its logs.
      for (const f of ['peers.dat', 'banlist.dat', 'anchors.dat', '.cookie', 'debug.log', 'mempool.dat']) {
        await rm(path.join(net, f), { force: true });
      }
      await rm(path.join(n.datadir, 'stdout.log'), { force: true });
    }
    await writeFile(
      path.join(staging, 'golden.json'),
      `${JSON.stringify({ version: GOLDEN_CHAIN_VERSION, height: GOLDEN_HEIGHT, builtAt: new Date().toISOString() })}\n`,
    );
    await rename(staging, target);
    done = true;
  } catch (err) {
    const logs = await Promise.all(nodes.map(async (n) => `--- ${n.name}\n${await n.logTail(20)}`));
    throw new Error(
      `building the golden litecoin chain failed: ${(err as Error).message}\n${logs.join('\n')}`,
    );
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) n.close();
    await rm(home, { recursive: true, force: true });
    if (!done) await rm(staging, { recursive: true, force: true });
  }
}

/** Half-built chains of builders that died (their pid is gone). */
async function removeAbandonedBuilds(target: string): Promise<void> {
  const prefix = `${path.basename(target)}.tmp-`;
  for (const entry of await readdir(path.dirname(target))) {
    const pid = entry.startsWith(prefix) ? Number(entry.slice(prefix.length)) : 0;
    if (pid > 0 && !isAlive(pid))
      await rm(path.join(path.dirname(target), entry), { recursive: true, force: true });
  }
}
