import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DaemonClient, cookieFilePath } from '@hashwire/chain';
import { getFreePort } from './ports.js';
import { type ExitInfo, type ManagedProcess, spawnManaged, tailOf } from './process.js';
import { StopWaiting, waitFor } from './wait.js';

export interface LitecoinNodeOptions {
  name: string;
  datadir: string;
  /** HOME of the daemon: Debian's `litecoind` wrapper creates `~/.litecoin` on every start. */
  home: string;
  /** `-blocknotify` command (`%s` is the block hash). */
  blocknotify?: string;
  extraArgs?: readonly string[];
  /** @defaultValue 'litecoind' */
  binary?: string;
  /** @defaultValue 60_000 */
  startTimeoutMs?: number;
}

/** Name of the wallet every testkit node has loaded. */
export const WALLET_NAME = 'hw';

// Regtest chains are built once and reused for days: never let an old tip put the node into
// initial block download, where getblocktemplate refuses to work.
const MAX_TIP_AGE_S = 20 * 365 * 24 * 3600;
const START_ATTEMPTS = 3;

/** One litecoind in regtest mode on free ports of 127.0.0.1, with cookie auth. */
export class LitecoinNode {
  readonly name: string;
  readonly datadir: string;
  readonly cookieFile: string;
  /** The daemon's debug.log. */
  readonly logFile: string;
  #rpcPort = 0;
  #p2pPort = 0;
  #rpc: DaemonClient | undefined;
  #proc: ManagedProcess | undefined;
  #miningAddress: string | undefined;

  constructor(private readonly options: LitecoinNodeOptions) {
    this.name = options.name;
    this.datadir = options.datadir;
    this.cookieFile = cookieFilePath(options.datadir, 'regtest');
    this.logFile = path.join(options.datadir, 'regtest', 'debug.log');
  }

  get rpcPort(): number {
    return this.#rpcPort;
  }

  get p2pPort(): number {
    return this.#p2pPort;
  }

  /** `127.0.0.1:<p2p port>`, for `addnode`. */
  get p2pAddress(): string {
    return `127.0.0.1:${this.#p2pPort}`;
  }

  get rpcUrl(): string {
    return `http://127.0.0.1:${this.#rpcPort}/`;
  }

  /** JSON-RPC client (cookie auth; the node's wallet is its only one, so wallet calls work too). */
  get rpc(): DaemonClient {
    if (!this.#rpc) throw new Error(`${this.name}: not started`);
    return this.#rpc;
  }

  get pid(): number | undefined {
    return this.#proc?.running ? this.#proc.pid : undefined;
  }

  get running(): boolean {
    return this.#proc?.running ?? false;
  }

  /** Starts the daemon (on new free ports the first time, the same ports after) and waits for RPC. */
  async start(): Promise<void> {
    if (this.running) return;
    // Debian's wrapper runs `[ -e ~/.litecoin ] || mkdir ~/.litecoin`: nodes sharing a HOME and
    // starting together race on it ("File exists"), so it must exist before any of them starts.
    await mkdir(path.join(this.options.home, '.litecoin'), { recursive: true });
    const firstStart = this.#rpcPort === 0;
    for (let attempt = 1; ; attempt++) {
      if (firstStart) {
        this.#rpcPort = await getFreePort();
        this.#p2pPort = await getFreePort();
        this.#rpc?.close();
        this.#rpc = new DaemonClient({
          url: this.rpcUrl,
          cookieFile: this.cookieFile,
          name: this.name,
          timeoutMs: 60_000,
        });
      }
      try {
        await this.#launch();
        return;
      } catch (err) {
        // Another process took a port between our pick and the daemon binding it.
        if (!firstStart || !(err instanceof PortTakenError) || attempt === START_ATTEMPTS) throw err;
      }
    }
  }

  /** SIGTERM (litecoind shuts down cleanly), SIGKILL after the deadline. */
  async stop(deadlineMs = 15_000): Promise<ExitInfo | undefined> {
    // litecoind's shutdown waits for open HTTP connections: close our kept-alive ones first.
    this.#rpc?.close();
    return this.#proc?.stop({ deadlineMs });
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** An address of the node's wallet to mine to (one per node, bech32). */
  async miningAddress(): Promise<string> {
    this.#miningAddress ??= await this.rpc.call<string>('getnewaddress', ['', 'bech32']);
    return this.#miningAddress;
  }

  /** Mines `n` blocks to `address` (the node's mining address by default); returns their hashes. */
  async mine(n = 1, address?: string): Promise<string[]> {
    return this.rpc.call<string[]>('generatetoaddress', [n, address ?? (await this.miningAddress())]);
  }

  logTail(lines = 40): Promise<string> {
    return tailOf(this.logFile, lines);
  }

  close(): void {
    this.#rpc?.close();
  }

  async #launch(): Promise<void> {
    const args = [
      '-regtest',
      `-datadir=${this.datadir}`,
      `-port=${this.#p2pPort}`,
      `-rpcport=${this.#rpcPort}`,
      `-bind=127.0.0.1:${this.#p2pPort}`,
      '-rpcbind=127.0.0.1',
      '-rpcallowip=127.0.0.1',
      '-listen=1',
      '-server=1',
      '-discover=0',
      '-dnsseed=0',
      '-listenonion=0',
      '-upnp=0',
      '-printtoconsole=0',
      '-shrinkdebugfile=0',
      '-persistmempool=0',
      '-fallbackfee=0.0002',
      `-maxtipage=${MAX_TIP_AGE_S}`,
      // Peers on loopback relay transactions without the privacy delay.
      '-whitelist=127.0.0.1',
      // Each pending GBT long poll holds an RPC thread; tests run several pollers at once.
      '-rpcthreads=16',
      '-rpcworkqueue=64',
      ...(this.options.blocknotify ? [`-blocknotify=${this.options.blocknotify}`] : []),
      ...(this.options.extraArgs ?? []),
    ];
    await mkdir(this.datadir, { recursive: true });
    const proc = await spawnManaged(this.name, this.options.binary ?? 'litecoind', args, {
      env: { ...process.env, HOME: this.options.home, LC_ALL: 'C' },
      logFile: path.join(this.datadir, 'stdout.log'),
    });
    this.#proc = proc;
    const timeoutMs = this.options.startTimeoutMs ?? 60_000;
    try {
      await waitFor(
        async () => {
          if (!proc.running) throw new StopWaiting('the daemon exited');
          await this.rpc.call('getblockcount', [], { timeoutMs: 5_000 });
          return true;
        },
        { timeoutMs, intervalMs: 25, what: `${this.name} RPC` },
      );
    } catch (err) {
      await proc.stop({ deadlineMs: 2_000 });
      const tail = `${await proc.logTail(10)}\n${await this.logTail(25)}`;
      if (/Unable to bind|Address already in use/.test(tail)) throw new PortTakenError();
      throw new Error(`${this.name} did not start: ${(err as Error).message}; log ${this.logFile}:\n${tail}`);
    }
  }
}

class PortTakenError extends Error {}
