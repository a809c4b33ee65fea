import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  type AssembledBlock,
  LITECOIN_REGTEST,
  assembleTemplateBlock,
  bitsToTarget,
  hashBackendInfo,
  hashMeetsTarget,
  parseBlockTemplate,
  scryptHeaders,
  targetToBuffer,
} from '@hashwire/chain';
import {
  type LitecoinNode,
  type LitecoinRegtest,
  liveProcesses,
  startLitecoinRegtest,
} from '@hashwire/testkit';

export const demoUsage = `usage: hashwire demo [--duration SECONDS] [--interval SECONDS]

Starts a litecoind regtest pair (MWEB active) and solo-mines on it with the chain library:
getblocktemplate -> coinbase, merkle root, header -> native scrypt -> submitblock, one line per
block. The pool services (jobmanager, stratum, reporter) are not built yet; this demo does not
use them.

  --duration SECONDS  stop after mining this long (default: until Ctrl-C or SIGTERM)
  --interval SECONDS  pause between blocks; regtest difficulty is trivial (default: 1, 0: none)`;

/** A bad `hashwire demo` command line (printed as one line, exit code 2). */
export class DemoUsageError extends Error {
  override readonly name = 'DemoUsageError';
}

export interface DemoOptions {
  /** Stop after mining this long. @defaultValue until `signal` aborts */
  durationMs?: number;
  /** Pause between two blocks. @defaultValue 1_000 */
  intervalMs?: number;
  /** Aborting stops the demo (the command wires SIGINT and SIGTERM to it). */
  signal?: AbortSignal;
  /** Receives each output line. @defaultValue written to stdout */
  write?: (line: string) => void;
}

export interface DemoResult {
  accepted: number;
  rejected: number;
}

const POOL_TAG = '/hashwire/';
const EXTRANONCE1 = Buffer.from('68770000', 'hex');
/** Headers per native scrypt call: small enough to stop quickly, large enough to keep both threads busy. */
const GRIND_BATCH = 256;
const HEADER_BYTES = 80;
/** A payment per block so the blocks carry wallet transactions besides the coinbase and HogEx. */
const PAYMENT_LTC = 0.01;

function seconds(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || (min > 0 && n === 0)) {
    throw new DemoUsageError(
      `--${flag} must be a number of seconds ${min > 0 ? 'above 0' : '≥ 0'}, got "${value}"`,
    );
  }
  return Math.round(n * 1000);
}

/** `hashwire demo`: parses the command line, stops on SIGINT/SIGTERM, exit code 0 when stopped. */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      interval: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${demoUsage}\n`);
    return 0;
  }
  const durationMs = seconds(values.duration, 'duration', 1);
  const intervalMs = seconds(values.interval, 'interval', 0);
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    process.stdout.write(`\n${signal}: stopping\n`);
    controller.abort(new Error(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runDemo({
      signal: controller.signal,
      ...(durationMs !== undefined && { durationMs }),
      ...(intervalMs !== undefined && { intervalMs }),
    });
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * Starts a litecoind regtest pair through the testkit and mines blocks on node0 with the chain
 * library until `durationMs` passed or `signal` aborted; then stops both daemons.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const intervalMs = options.intervalMs ?? 1_000;
  write('hashwire demo: the pool services (jobmanager, stratum, reporter) are not built yet.');
  write(
    'This demo mines directly with the chain library: template -> block -> native scrypt -> submitblock.',
  );
  write('starting a litecoind regtest pair (golden chain, MWEB active) ...');

  const regtest = await startLitecoinRegtest({ nodes: 2 });
  const result: DemoResult = { accepted: 0, rejected: 0 };
  try {
    const [node0, node1] = regtest.nodes as [LitecoinNode, LitecoinNode];
    const height = await node0.rpc.getBlockCount();
    write(
      `litecoind up in ${regtest.startMs.chain + regtest.startMs.nodes} ms: node0 ${node0.rpcUrl} pid ${node0.pid}, node1 ${node1.rpcUrl} pid ${node1.pid}, height ${height}`,
    );
    const poolAddress = await node0.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const peerAddress = await node1.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const backend = hashBackendInfo();
    write(
      `payout ${poolAddress} (node0 wallet), tag ${POOL_TAG}, scrypt ${backend.backend} (${backend.kernels.scrypt})`,
    );
    write(
      `mining on node0; ${options.durationMs === undefined ? 'Ctrl-C stops' : `stops after ${options.durationMs / 1000} s (Ctrl-C earlier)`}`,
    );

    const signals = [
      options.signal,
      options.durationMs === undefined ? undefined : AbortSignal.timeout(options.durationMs),
    ];
    const stop = AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
    await mine(regtest, { poolAddress, peerAddress, intervalMs, stop, write, result });

    write(`stopping after ${result.accepted} accepted and ${result.rejected} rejected blocks ...`);
    const tip = await regtest.sync(10_000);
    write(`node1 followed: both nodes at ${tip}, height ${await node1.rpc.getBlockCount()}`);
  } finally {
    await regtest.stop();
  }
  const left = liveProcesses();
  write(
    left.length === 0 ? 'stopped: no litecoind left' : `stopped, but still running: ${JSON.stringify(left)}`,
  );
  return result;
}

interface MineContext {
  poolAddress: string;
  peerAddress: string;
  intervalMs: number;
  stop: AbortSignal;
  write: (line: string) => void;
  result: DemoResult;
}

async function mine(regtest: LitecoinRegtest, ctx: MineContext): Promise<void> {
  const rpc = regtest.rpc[0]!;
  let extranonce = 0;
  while (!ctx.stop.aborted) {
    try {
      // Ordinary wallet traffic: node0 pays node1, so the next template carries a transaction.
      await rpc.call('sendtoaddress', [ctx.peerAddress, PAYMENT_LTC], { signal: ctx.stop });
      const template = parseBlockTemplate(await rpc.getBlockTemplate({ signal: ctx.stop }));
      const extranonce2 = Buffer.alloc(4);
      extranonce2.writeUInt32BE(extranonce++ >>> 0);
      const base = {
        template,
        params: LITECOIN_REGTEST,
        payouts: [{ address: ctx.poolAddress }],
        poolTag: POOL_TAG,
        extranonce1: EXTRANONCE1,
        extranonce2,
      };
      const started = performance.now();
      const found = await grind(assembleTemplateBlock({ ...base, nonce: 0 }), template.bits, ctx.stop);
      if (!found) break;
      const seconds = (performance.now() - started) / 1000;
      const block = assembleTemplateBlock({ ...base, nonce: found.nonce });
      const verdict = await rpc.submitBlock(block.blockHex, { signal: ctx.stop });
      if (verdict.accepted) ctx.result.accepted++;
      else ctx.result.rejected++;
      ctx.write(
        [
          `height ${template.height}`,
          block.hashHex,
          `txs ${template.transactions.length + 1}`,
          verdict.accepted ? 'accepted' : `rejected (${verdict.reason ?? 'no reason'})`,
          `${formatRate(found.hashes / seconds)} (${found.hashes} hashes)`,
        ].join('  '),
      );
      if (ctx.intervalMs > 0) await sleep(ctx.intervalMs, undefined, { signal: ctx.stop });
    } catch (err) {
      if (ctx.stop.aborted) break;
      throw err;
    }
  }
}

/** Batches of headers that differ only in the nonce, through the native scrypt, until one meets the target. */
async function grind(
  start: AssembledBlock,
  bits: string,
  stop: AbortSignal,
): Promise<{ nonce: number; hashes: number } | undefined> {
  const target = targetToBuffer(bitsToTarget(bits));
  const batch = Buffer.allocUnsafe(GRIND_BATCH * HEADER_BYTES);
  for (let first = 0; first + GRIND_BATCH <= 0x1_0000_0000; first += GRIND_BATCH) {
    if (stop.aborted) return undefined;
    for (let i = 0; i < GRIND_BATCH; i++) {
      start.header.copy(batch, i * HEADER_BYTES);
      batch.writeUInt32LE(first + i, i * HEADER_BYTES + 76);
    }
    const hashes = await scryptHeaders(batch);
    for (let i = 0; i < GRIND_BATCH; i++) {
      if (hashMeetsTarget(hashes.subarray(i * 32, i * 32 + 32), target)) {
        return { nonce: first + i, hashes: first + GRIND_BATCH };
      }
    }
  }
  throw new Error('nonce space exhausted without a block (the template target is not regtest-easy)');
}

function formatRate(hashesPerSecond: number): string {
  if (hashesPerSecond >= 1e6) return `${(hashesPerSecond / 1e6).toFixed(2)} MH/s`;
  if (hashesPerSecond >= 1e3) return `${(hashesPerSecond / 1e3).toFixed(1)} kH/s`;
  return `${hashesPerSecond.toFixed(0)} H/s`;
}
