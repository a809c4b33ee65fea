// What the `stratum` bench suite and its two child processes (stratum-server-child,
// stratum-session-child) agree on.

/** A regtest p2pkh address (version byte 111): what the bench's miners authorize with. */
export const BENCH_ADDRESS = 'mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn';

/** Job ids of fan-out round `round`: the server's job and the baseline line, equally long. */
export function fanoutIds(round: number): { job: string; raw: string } {
  const n = String(round).padStart(4, '0');
  return { job: `j${n}`, raw: `r${n}` };
}

/** What a `mining.notify` line of job `jobId` contains (the job id is its first param). */
export function notifyMarker(jobId: string): string {
  return `"mining.notify","params":["${jobId}"`;
}

export interface ServerStartParams {
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
}

export interface OpenParams {
  port: number;
  sessions: number;
  /** Payout address in the usernames (must be valid for the server's chain). @defaultValue BENCH_ADDRESS */
  address?: string;
  /** Handshakes in flight while opening. */
  concurrency: number;
}

export interface FanoutParams {
  controlPort: number;
  kind: 'job' | 'raw';
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
