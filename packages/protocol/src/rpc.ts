/**
 * RPC envelope and the contracts between services. The transport (ZeroMQ ROUTER/DEALER,
 * msgpack) lives in the `rpc` package; these are the shapes both sides agree on.
 */
export const RPC_VERSION = 1;

export const RpcKind = { Request: 'req', Reply: 'rep', Error: 'err', Push: 'push' } as const;
export type RpcKind = (typeof RpcKind)[keyof typeof RpcKind];

/** `[version, kind, id, method, body]`, msgpack-encoded in one frame. */
export type RpcEnvelope = [
  version: typeof RPC_VERSION,
  kind: RpcKind,
  id: number,
  method: string,
  body: unknown,
];

/** Body of an `err` envelope. */
export interface RpcErrorBody {
  code: number;
  message: string;
}

export const RpcErrorCode = {
  BadEnvelope: 1,
  UnknownMethod: 2,
  BadRequest: 3,
  Timeout: 4,
  Unavailable: 5,
  TooLarge: 6,
  Internal: 7,
  Fenced: 8,
  Unauthorized: 9,
} as const;
export type RpcErrorCode = (typeof RpcErrorCode)[keyof typeof RpcErrorCode];

/** A stratum job as the jobmanager pushes it. Hex strings are in stratum wire order. */
export interface Job {
  chain: string;
  epoch: number;
  jobId: string;
  jmId: string;
  height: number;
  /** Previous block hash with its 4-byte words swapped, as `mining.notify` sends it. */
  prevhash: string;
  coinb1: string;
  coinb2: string;
  merkleBranch: string[];
  version: string;
  nbits: string;
  ntime: string;
  cleanJobs: boolean;
  /** Network target, 64 hex digits, big-endian. */
  target: string;
  createdAt: number;
  /**
   * Present when the chain pays SOLO: the coinbase pays the finder. A stratum server writes each
   * session's coinb2 as `coinb2Head ‖ finderValueSat (8 bytes LE) ‖ varint ‖ the session's payout
   * script ‖ coinb2Tail` (hex, wire order) and submits its blocks with `payoutAddress`. `coinb2`
   * stays the pool's own coinbase end (what a server that does not know `solo` sends).
   */
  solo?: SoloJobEnd;
}

/** The coinbase end of a SOLO job, cut around the finder's output (see `Job.solo`). */
export interface SoloJobEnd {
  coinb2Head: string;
  finderValueSat: number;
  coinb2Tail: string;
}

export const ShareResult = {
  Accepted: 'accepted',
  Stale: 'stale',
  Duplicate: 'duplicate',
  LowDiff: 'lowdiff',
  Invalid: 'invalid',
} as const;
export type ShareResult = (typeof ShareResult)[keyof typeof ShareResult];

export interface Share {
  shareId: string;
  sessionId: string;
  account: string;
  worker: string;
  jobId: string;
  extranonce1: string;
  extranonce2: string;
  ntime: string;
  nonce: string;
  version: string;
  /** Difficulty credited for this share (the session's difficulty for the job). */
  diff: number;
  /** Difficulty the hash actually met. */
  actualDiff: number;
  result: ShareResult;
  ts: number;
  ip: string;
  blockHash?: string;
}

/**
 * One sub-batch of a stratum server's spool batch (the shares of one ring bucket). `seq` numbers
 * it within its spool (`spoolId`), never reused; `id` (`<spool batch id>:<bucket>`) is for
 * operators and tracing.
 */
export interface ShareSubBatch {
  seq: number;
  id: string;
  shares: Share[];
}

/**
 * `reporter.shares`: every sub-batch a stratum server routes to one reporter in one interval,
 * credited by one script run. `floor` is the server's lowest unacknowledged sequence number:
 * every sub-batch below it was acknowledged (or quarantined), so the reporters forget their
 * answers below it. A spool keeps its `spoolId` across restarts (it is stored with the spool).
 */
export interface SharesRequest {
  stratumId: string;
  spoolId: string;
  chain: string;
  floor: number;
  subs: ShareSubBatch[];
}

/**
 * What became of one sub-batch: `credited` now, a `repeat` of one credited before (its first
 * answer), `forgotten` (below the spool's floor: acknowledged before, answer no longer kept;
 * nothing written), or refused with an error (`BadRequest`/`TooLarge`: the sub-batch itself is
 * unreadable).
 */
export type SubBatchOutcome =
  | { seq: number; status: 'credited' | 'repeat' | 'forgotten'; credited: number }
  | { seq: number; status: 'refused'; error: RpcErrorBody };

/** One outcome per sub-batch of the request, in its order. */
export interface SharesReply {
  subs: SubBatchOutcome[];
}

/**
 * The `reporter.shares` wire this release speaks: 2 is `SharesRequest` (spool sequence numbers,
 * sub-batches per request); 1 was one `{ batchId, stratumId, chain, shares }` per request.
 * Reporters advertise it in their registry record (`sharesWire`); a stratum server sends only to
 * reporters that advertise its own, so versions never meet on the wire during a rolling upgrade.
 */
export const SHARES_WIRE = 2;

/** Sub-batches one `reporter.shares` request may carry. */
export const MAX_SUB_BATCHES_PER_REQUEST = 1000;

/** A spool id: what the stratum server persists with its spool (a UUID); part of a Redis key. */
export const SPOOL_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * How long a `jm.submitBlock` may take: a stratum server's deadline for the call, and how long a
 * closing jobmanager waits for the submits in flight before it leaves the registry. Both sides
 * must agree: a jobmanager that leaves sooner drops answers a stratum server still waits for.
 */
export const BLOCK_SUBMIT_TIMEOUT_MS = 5_000;

/** Method names and their request/reply types, so clients and servers are typed from one map. */
export interface RpcMethods {
  'jm.subscribe': {
    req: { stratumId: string; chain: string };
    /**
     * `job`: the current job. `earlier`: jobs published before it on the same tip since the last
     * clean job, oldest first, that miners may still submit shares on (absent from jobmanagers of
     * releases before it, and from a standby, which answers with the group's latest job only).
     */
    rep: { job: Job | null; earlier?: Job[] };
  };
  'jm.submitBlock': {
    req: {
      chain: string;
      jobId: string;
      extranonce1: string;
      extranonce2: string;
      ntime: string;
      nonce: string;
      version: string;
      shareId: string;
      /**
       * The finder: the share's account and worker name (as the miner gave it, '' for none).
       * Carried into the block record and its `block.*` events; optional, so a stratum server of an
       * earlier release still submits.
       */
      account?: string;
      worker?: string;
      /**
       * SOLO jobs: the payout address whose coinbase the miner hashed (the session's address, as
       * the stratum server canonicalised it). The jobmanager builds the coinbase for it.
       */
      payoutAddress?: string;
    };
    /**
     * `stale`: valid, but its parent was no longer the tip when it was submitted (the work had
     * gone stale). `orphaned`: its parent was the tip, but a sibling block at the same height
     * reached the daemons first (a lost race). `reason` says which, with the daemons' words.
     */
    rep: { accepted: boolean; hash: string; reason?: string; orphaned?: boolean; stale?: boolean };
  };
  'reporter.shares': { req: SharesRequest; rep: SharesReply };
  'svc.status': { req: Record<string, never>; rep: Record<string, unknown> };
  'svc.drain': { req: Record<string, never>; rep: { draining: true } };
}
export type RpcMethod = keyof RpcMethods;

/** Messages a server pushes to subscribed clients. */
/** A jobmanager's view of its coin daemons, pushed to subscribers whenever it changes and every few seconds. */
export interface JobmanagerHealth {
  jmId: string;
  chain: string;
  /**
   * The jobmanager can give fresh work: a daemon answered recently and gave a block template
   * within the jobmanager's `templateGraceMs` (daemon errors such as "not connected" count).
   */
  healthy: boolean;
  /** Epoch ms of the last answer from any daemon. */
  lastOkAt: number;
  /** While unhealthy, why (the last daemon failure in it); else the last daemon failure. No credentials. */
  lastError: string | null;
  /** Epoch ms of the last block template a daemon gave (absent from jobmanagers before issue 15). */
  lastTemplateAt?: number;
  /** ms from `lastTemplateAt` to this report, on the jobmanager's clock (absent from older jobmanagers). */
  templateAgeMs?: number;
}

export interface RpcPushes {
  job: Job;
  health: JobmanagerHealth;
}

export const SERVICE_KINDS = ['jobmanager', 'stratum', 'reporter', 'api', 'payouts'] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];

/** Default port ranges: each service binds the first free port of its range and registers it. */
export const PortRange = {
  rpc: [28000, 28999],
  http: [29000, 29999],
  stratum: [23000, 23999],
} as const;

/**
 * Whether `host` is the loopback interface as hashwire counts it: exactly `127.0.0.1`, `::1` or
 * `localhost`. Any other address (other `127.x` addresses included, which tests use as a stand-in
 * for a LAN address) counts as reachable by other hosts, so RPC bound there must use CURVE.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  return h === '127.0.0.1' || h === '::1' || h === 'localhost';
}
