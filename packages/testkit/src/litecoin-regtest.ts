import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DaemonClient } from '@hashwire/chain';
import { type BlocknotifyReceiver, createBlocknotifyReceiver } from './blocknotify.js';
import { GOLDEN_NODES, goldenChain } from './golden-chain.js';
import { LitecoinNode, WALLET_NAME } from './litecoin-node.js';
import { makeTempDir } from './process.js';
import { waitFor } from './wait.js';

export interface LitecoinRegtestOptions {
  /** @defaultValue 2 */
  nodes?: number;
  /**
   * Start from the cached golden chain (height 533, MWEB active, mature coins in every wallet
   * of the first two nodes). With false, nodes start on an empty chain with empty wallets.
   * @defaultValue true
   */
  golden?: boolean;
  /** Wire `-blocknotify` of every node to `receiver`. @defaultValue true */
  blocknotify?: boolean;
  /** More daemon arguments for node `index`. */
  extraArgs?: (index: number) => readonly string[];
  /** Keep datadirs (and debug.log) after `stop()`. @defaultValue `HASHWIRE_KEEP_TEST_DATA=1` */
  keepData?: boolean;
  /** @defaultValue 'litecoind' */
  binary?: string;
}

export interface WaitHeightOptions {
  /** @defaultValue every node */
  nodes?: readonly LitecoinNode[];
  /** @defaultValue 30_000 */
  timeoutMs?: number;
}

export interface LitecoinRegtest {
  nodes: LitecoinNode[];
  /** `nodes[i].rpc`. */
  rpc: DaemonClient[];
  datadirs: string[];
  /** Gets `block` events (hash, `node<i>`) from every node's `-blocknotify`. */
  receiver: BlocknotifyReceiver;
  /** Height of the chain the nodes started on. */
  startHeight: number;
  /** ms spent preparing datadirs (golden build or copy) and starting the nodes. */
  startMs: { chain: number; nodes: number };
  /** Mines `n` blocks on `node` (index or node) to `address` or the node's wallet; returns hashes. */
  mine(node: LitecoinNode | number, n?: number, address?: string): Promise<string[]>;
  /** Waits until the nodes are at `height` or above. */
  waitForHeight(height: number, options?: WaitHeightOptions): Promise<void>;
  /** Waits until every node has the same tip; returns its hash. */
  sync(timeoutMs?: number): Promise<string>;
  /** Waits until every node has the same mempool. */
  syncMempools(timeoutMs?: number): Promise<void>;
  /** Connects every pair of running nodes (again, e.g. after a restart) and waits for the peers. */
  connect(): Promise<void>;
  /** The last lines of every node's debug.log, for a failing test's output. */
  logs(lines?: number): Promise<string>;
  /** Stops the nodes and the receiver, removes the datadirs unless `keepData`. */
  stop(): Promise<void>;
}

/**
 * Starts `nodes` litecoind regtest nodes on free ports, connected to each other, each with a
 * loaded wallet, `-fallbackfee` and `-blocknotify` wired to one receiver. By default they start
 * from a copy of the golden chain: MWEB active, so every template has `mweb` and a HogEx.
 */
export async function startLitecoinRegtest(options: LitecoinRegtestOptions = {}): Promise<LitecoinRegtest> {
  const count = options.nodes ?? 2;
  if (!Number.isInteger(count) || count < 1) throw new TypeError(`nodes: a positive integer, got ${count}`);
  const useGolden = options.golden ?? true;
  const keepData = options.keepData ?? process.env.HASHWIRE_KEEP_TEST_DATA === '1';
  const chainStarted = Date.now();
  const golden = useGolden ? await goldenChain(options.binary) : undefined;
  const root = await makeTempDir('litecoin');
  const home = path.join(root, 'home');
  const receiver = await createBlocknotifyReceiver();
  const nodes: LitecoinNode[] = [];
  for (let i = 0; i < count; i++) {
    const datadir = path.join(root, `node${i}`);
    if (golden) {
      // Nodes past the golden ones share the chain but get a wallet of their own.
      const source = golden.datadirs[Math.min(i, GOLDEN_NODES - 1)] as string;
      const ownWallet = i < GOLDEN_NODES;
      await cp(source, datadir, {
        recursive: true,
        filter: (src) => ownWallet || !/[/\\](wallets|settings\.json)/.test(path.relative(source, src)),
      });
    }
    const nodeOptions: ConstructorParameters<typeof LitecoinNode>[0] = { name: `node${i}`, datadir, home };
    if (options.blocknotify ?? true) nodeOptions.blocknotify = receiver.command(`node${i}`);
    if (options.extraArgs) nodeOptions.extraArgs = options.extraArgs(i);
    if (options.binary) nodeOptions.binary = options.binary;
    nodes.push(new LitecoinNode(nodeOptions));
  }
  const chainMs = Date.now() - chainStarted;

  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) n.close();
    await receiver.close();
    if (!keepData) await rm(root, { recursive: true, force: true });
  };

  const nodesStarted = Date.now();
  const regtest: LitecoinRegtest = {
    nodes,
    rpc: [],
    datadirs: nodes.map((n) => n.datadir),
    receiver,
    startHeight: golden?.height ?? 0,
    startMs: { chain: chainMs, nodes: 0 },
    mine: (node, n, address) => pick(nodes, node).mine(n ?? 1, address),
    async waitForHeight(height, waitOptions = {}) {
      const which = waitOptions.nodes ?? nodes;
      await waitFor(
        async () => {
          const heights = await Promise.all(which.map((n) => n.rpc.getBlockCount()));
          return heights.every((h) => h >= height);
        },
        { timeoutMs: waitOptions.timeoutMs ?? 30_000, what: `height ${height}` },
      );
    },
    async sync(timeoutMs = 30_000) {
      return waitFor(
        async () => {
          const tips = await Promise.all(nodes.map((n) => n.rpc.getBestBlockHash()));
          return tips.every((t) => t === tips[0]) ? tips[0] : undefined;
        },
        { timeoutMs, what: 'nodes on the same tip' },
      );
    },
    async syncMempools(timeoutMs = 30_000) {
      await waitFor(
        async () => {
          const pools = await Promise.all(
            nodes.map(async (n) => (await n.rpc.call<string[]>('getrawmempool')).sort().join()),
          );
          return pools.every((p) => p === pools[0]);
        },
        { timeoutMs, what: 'identical mempools' },
      );
    },
    connect: () => connectAll(nodes),
    async logs(lines = 40) {
      const tails = await Promise.all(
        nodes.map(async (n) => `--- ${n.name} ${n.logFile}\n${await n.logTail(lines)}`),
      );
      return tails.join('\n');
    },
    stop,
  };

  try {
    await Promise.all(nodes.map((n) => n.start()));
    regtest.rpc = nodes.map((n) => n.rpc);
    if (!golden || count > GOLDEN_NODES) {
      const fresh = golden ? nodes.slice(GOLDEN_NODES) : nodes;
      for (const n of fresh)
        await n.rpc.call('createwallet', [WALLET_NAME, false, false, '', false, false, true]);
    }
    await connectAll(nodes);
  } catch (err) {
    const logs = await regtest.logs(20);
    await stop();
    throw new Error(`litecoin regtest did not start: ${(err as Error).message}\n${logs}`);
  }
  regtest.startMs.nodes = Date.now() - nodesStarted;
  return regtest;
}

function pick(nodes: LitecoinNode[], node: LitecoinNode | number): LitecoinNode {
  if (typeof node !== 'number') return node;
  const found = nodes[node];
  if (!found) throw new RangeError(`node index ${node}: there are ${nodes.length} nodes`);
  return found;
}

async function connectAll(nodes: LitecoinNode[]): Promise<void> {
  const running = nodes.filter((n) => n.running);
  for (let i = 0; i < running.length; i++) {
    for (let j = i + 1; j < running.length; j++) {
      const [a, b] = [running[i] as LitecoinNode, running[j] as LitecoinNode];
      const peers = await a.rpc.call<{ addr: string }[]>('getpeerinfo');
      if (!peers.some((p) => p.addr === b.p2pAddress)) {
        await a.rpc.call('addnode', [b.p2pAddress, 'onetry']);
      }
    }
  }
  await waitFor(
    async () => {
      const counts = await Promise.all(running.map((n) => n.rpc.call<number>('getconnectioncount')));
      return counts.every((c) => c >= running.length - 1);
    },
    { timeoutMs: 30_000, what: 'nodes connected to each other' },
  );
}
