// What the `stratum` bench suite and its two child processes (stratum-server-child,
// stratum-session-child) agree on.
import { createHash, randomBytes } from 'node:crypto';
import type { BlockTemplate } from '@hashwire/chain';

/**
 * A block template on a new block (a random previous hash: each job is clean, as on a block
 * found elsewhere) carrying `txids`. `easy`: regtest's network target, which every share meets;
 * otherwise one no bench share meets, so a submit load never submits a block.
 */
export function benchTemplate(txids: readonly string[], height: number, easy: boolean): BlockTemplate {
  return {
    version: 0x20000000,
    previousblockhash: randomBytes(32).toString('hex'),
    transactions: txids.map((txid) => ({ data: `0100000001${txid}`, txid, hash: txid })),
    coinbaseaux: {},
    coinbasevalue: 625_000_000,
    target: easy ? `7fffff${'00'.repeat(29)}` : `00000000ffff${'00'.repeat(26)}`,
    mintime: 1_700_000_000,
    curtime: 1_700_000_600,
    bits: easy ? '207fffff' : '1d00ffff',
    height,
    default_witness_commitment: `6a24aa21a9ed${randomBytes(32).toString('hex')}`,
  };
}

/** A regtest p2pkh address (version byte 111): what the bench's miners authorize with. */
export const BENCH_ADDRESS = 'mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn';

/**
 * Job ids of fan-out round `round`: the server's job and the baseline line, equally long; the
 * same for the SOLO rounds.
 */
export function fanoutIds(round: number): { job: string; raw: string; solo: string; soloRaw: string } {
  const n = String(round).padStart(4, '0');
  return { job: `j${n}`, raw: `r${n}`, solo: `s${n}`, soloRaw: `q${n}` };
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** Base58Check of `payload` (version byte included). */
function base58Check(payload: Buffer): string {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest();
  const data = Buffer.concat([payload, sha(sha(payload)).subarray(0, 4)]);
  let n = BigInt(`0x${data.toString('hex')}`);
  let text = '';
  while (n > 0n) {
    text = BASE58[Number(n % 58n)] + text;
    n /= 58n;
  }
  for (const byte of data) {
    if (byte !== 0) break;
    text = `1${text}`;
  }
  return text;
}

/**
 * `count` distinct regtest p2pkh addresses (version byte 111, a hash of the index as the key
 * hash): the payout addresses of the SOLO fan-out's sessions. All p2pkh, so every session's
 * notify line has the same length as the baseline's.
 */
export function benchAddresses(count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const hash160 = createHash('sha256').update(`hashwire-bench-${i}`).digest().subarray(0, 20);
    return base58Check(Buffer.concat([Buffer.of(111), hash160]));
  });
}

/** What a `mining.notify` line of job `jobId` contains (the job id is its first param). */
export function notifyMarker(jobId: string): string {
  return `"mining.notify","params":["${jobId}"`;
}

export interface ServerStartParams {
  /** Payout addresses of the SOLO rounds' sessions. */
  soloAddresses: string[];
  redisUrl: string;
  keyPrefix: string;
  spoolDir: string;
  /** Prepares jobs and baseline buffers for fan-out rounds 0…rounds (0: warm-up). */
  rounds: number;
  /** Transactions in the template: ~2,000 gives a mainnet-like 11-step merkle branch. */
  txCount: number;
}

export interface ServerStarted {
  port: number;
  /** Where the session process triggers a round: `job <round>\n` or `raw <round>\n`. */
  controlPort: number;
  /** Bytes of one round's `mining.notify` line (and of its baseline buffer). */
  notifyBytes: number;
  /** The same for a SOLO round (every session's line, whatever its address, has this length). */
  soloNotifyBytes: number;
}

export interface OpenParams {
  port: number;
  sessions: number;
  /** Payout address in the usernames (must be valid for the server's chain). @defaultValue BENCH_ADDRESS */
  address?: string;
  /** Payout addresses instead, round robin over the sessions (the SOLO fan-out). */
  addresses?: string[];
  /** Handshakes in flight while opening. */
  concurrency: number;
}

export interface FanoutParams {
  controlPort: number;
  /** `solo`: a SOLO job (one coinb2 per address); `soloraw`: its baseline buffer. */
  kind: 'job' | 'raw' | 'solo' | 'soloraw';
  round: number;
}

export interface HandshakeParams {
  port: number;
  concurrency: number;
  warmupSeconds: number;
  seconds: number;
}

export interface HandshakeResult {
  handshakes: number;
  seconds: number;
}

export interface SubmitServerParams {
  keyPrefix: string;
  spoolDir: string;
  txCount: number;
}

export interface SubmitServerStarted {
  port: number;
  extranonce2Size: number;
}

export interface SubmitParams {
  port: number;
  /** Miner connections, each keeping `inFlight` submits outstanding. */
  connections: number;
  inFlight: number;
  warmupSeconds: number;
  seconds: number;
}

export interface SubmitResult {
  /** Submits answered `true` in the measured window. */
  accepted: number;
  /** Submits answered otherwise in the whole run, and the first such answer. */
  refused: number;
  firstRefusal: string | null;
  seconds: number;
}

export interface FeedStartParams {
  redisUrl: string;
  keyPrefix: string;
  /** One stand-in jobmanager registration per chain id (one per stratum service under test). */
  chains: string[];
  /** Prepares fan-out rounds 0…rounds of each chain (0: warm-up). */
  rounds: number;
  txCount: number;
  extranonce1Size: number;
  extranonce2Size: number;
}

export interface FeedStarted {
  /** Per chain: where the session process triggers a fan-out round (`job <round>\n`). */
  controlPorts: Record<string, number>;
}

export interface PacedParams {
  port: number;
  extranonce2Size: number;
  /** Miner connections, each sending one `mining.submit` every `intervalMs`, answered or not. */
  connections: number;
  intervalMs: number;
}

export interface PacedResult {
  /** Per answered submit: when it was sent and when its answer arrived (epoch ms, sub-ms precision). */
  sentAt: number[];
  answeredAt: number[];
  /** Submits answered otherwise than `true`, and the first such answer. */
  refused: number;
  firstRefusal: string | null;
  /** Connections the server closed while the load ran (a switch must close none). */
  closed: number;
  /** Submits sent and never answered by the time the load stopped. */
  unanswered: number;
}
