/**
 * The one place Redis key names are made. Every key starts with a configurable prefix
 * (default `hw:`). Keys that a multi-key Lua script touches together share a hash tag
 * (`{...}`), so the script runs on Redis Cluster too.
 */
export interface KeyBuilderOptions {
  /** @defaultValue 'hw:' */
  prefix?: string;
}

export const DEFAULT_KEY_PREFIX = 'hw:';

const SAFE_PART = /^[A-Za-z0-9._:-]{1,200}$/;
const BLOCK_HASH = /^[0-9a-f]{64}$/;

function part(name: string, value: string | number): string {
  const text = String(value);
  if (!SAFE_PART.test(text)) {
    throw new TypeError(
      `${name} ${JSON.stringify(text)} is not usable in a Redis key (allowed: A-Z a-z 0-9 . _ : -)`,
    );
  }
  return text;
}

export function createKeyBuilder(options: KeyBuilderOptions = {}) {
  const prefix = options.prefix ?? DEFAULT_KEY_PREFIX;
  if (/[{}\s]/.test(prefix)) {
    throw new TypeError(`key prefix ${JSON.stringify(prefix)} must not contain braces or whitespace`);
  }
  return {
    prefix,
    /** Hash of one live service; its TTL is the health check. One hash tag per kind, shared with its index. */
    service: (kind: string, id: string) => `${prefix}svc:{${part('kind', kind)}}:${part('id', id)}`,
    /** Ids of a kind by last heartbeat. */
    serviceIndex: (kind: string) => `${prefix}svcidx:{${part('kind', kind)}}`,
    /** Channel where services announce up/down/changed. */
    serviceChannel: () => `${prefix}ev:svc`,
    /** Leader lease and its fencing epoch (group e.g. `jm:ltc`); one hash tag so a Lua script sees both. */
    lease: (group: string) => `${prefix}lease:{${part('group', group)}}`,
    leaseEpoch: (group: string) => `${prefix}epoch:{${part('group', group)}}`,
    /** Channel where handovers are announced, so a named successor takes over at once. */
    leaseChannel: () => `${prefix}ev:lease`,
    /** Extranonce1 prefix slot leased by one stratum instance. */
    extranonceSlot: (slot: number) => `${prefix}en1slot:${part('slot', slot)}`,
    /**
     * Channel of one stratum process (its extranonce1 holder token): other servers ask it here to
     * hand over a session it holds live, and it answers the asker on the asker's channel.
     */
    takeoverChannel: (holder: string) => `${prefix}ev:takeover:${part('holder', holder)}`,
    /**
     * A resumable session of one chain. Sessions, extranonce1 claims and everything else of a
     * chain share its `{chain}` hash tag: one slot, so a server's commands for many sessions
     * leave in one pipeline on Redis Cluster too.
     */
    session: (chain: string, sessionId: string) =>
      `${prefix}sess:{${part('chain', chain)}}:${part('sessionId', sessionId)}`,
    /** Claim of one extranonce1 value (hex) by a live or resumable session of the chain. */
    extranonce1: (chain: string, extranonce1Hex: string) =>
      `${prefix}en1:{${part('chain', chain)}}:${part('extranonce1', extranonce1Hex)}`,
    job: (chain: string, jobId: string) => `${prefix}job:{${part('chain', chain)}}:${part('jobId', jobId)}`,
    /** A block template jobs were built from, stored once however many jobs share it. */
    template: (chain: string, templateId: string) =>
      `${prefix}tpl:{${part('chain', chain)}}:${part('templateId', templateId)}`,
    /** The latest job a group published, so a new leader knows whether the prevhash changed. */
    latestJob: (chain: string) => `${prefix}job:{${part('chain', chain)}}:latest`,
    /**
     * Names of the job keys before every key of a chain carried its `{chain}` tag (release 0.1),
     * read only, so a block found on a job an old leader published during an upgrade can still
     * be assembled, and the job id sequence continues instead of restarting at 1.
     */
    legacy: {
      job: (chain: string, jobId: string) => `${prefix}job:${part('chain', chain)}:${part('jobId', jobId)}`,
      template: (chain: string, templateId: string) =>
        `${prefix}tpl:${part('chain', chain)}:${part('templateId', templateId)}`,
      jobSequence: (chain: string) => `${prefix}jobseq:${part('chain', chain)}`,
    },
    /** Sequence for globally unique job ids of a chain. */
    jobSequence: (chain: string) => `${prefix}jobseq:{${part('chain', chain)}}`,
    /**
     * Acknowledged sub-batches of one stratum spool (zset: member `<seq>:<credited>:<digest>`
     * scored by seq, and member `floor` scored by the spool's lowest unacknowledged seq).
     */
    spoolAcks: (chain: string, spoolId: string) =>
      `${prefix}acks:{${part('chain', chain)}}:${part('spoolId', spoolId)}`,
    /**
     * Credited difficulty per account (`|<account>`) and of the whole chain (`|`) in one hour
     * (`bucket` = epoch hours); kept 26 h for the 24 h hashrate.
     */
    accountHashrate: (chain: string, bucket: number) =>
      `${prefix}hra:{${part('chain', chain)}}:60m:${part('bucket', bucket)}`,
    /**
     * Shares of one job already credited (share digest → digest of the batch that claimed it):
     * the cluster-wide duplicate check. Tagged with the chain, like the acknowledgements it is written with.
     */
    shareSeen: (chain: string, jobId: string) =>
      `${prefix}seen:{${part('chain', chain)}}:${part('jobId', jobId)}`,
    /** Hash account → difficulty credited in the current round. */
    round: (chain: string) => `${prefix}round:{${part('chain', chain)}}`,
    /** The round a block of ours closed (renamed from `round`), by block hash (64 hex digits). */
    closedRound: (chain: string, blockHash: string) => {
      if (!BLOCK_HASH.test(blockHash)) {
        throw new TypeError(`block hash ${JSON.stringify(blockHash)} is not 64 hex digits`);
      }
      return `${prefix}round:{${part('chain', chain)}}:${blockHash}`;
    },
    /** Hash worker (`account.worker`) → packed lifetime counters. */
    workers: (chain: string) => `${prefix}workers:{${part('chain', chain)}}`,
    /**
     * Zset of every worker name of the chain (`account.worker`, or the account alone), all at
     * score 0: read by lexical range, one account's workers in O(log N + its workers).
     */
    workerIndex: (chain: string) => `${prefix}wkidx:{${part('chain', chain)}}`,
    /** Zset worker → time (epoch ms) of its latest accepted share, trimmed to the online window. */
    onlineWorkers: (chain: string) => `${prefix}online:{${part('chain', chain)}}:workers`,
    /** Zset account → time (epoch ms) of its latest accepted share, trimmed to the online window. */
    onlineAccounts: (chain: string) => `${prefix}online:{${part('chain', chain)}}:accounts`,
    /**
     * The chain's share counts by result over its lifetime, pool-wide (a string
     * `accepted stale duplicate lowdiff invalid`), added to by the credit script with each request.
     */
    shareCounts: (chain: string) => `${prefix}sharecounts:{${part('chain', chain)}}`,
    /** The current round's credited difficulty, summed (a string); absent until the round's first credit. */
    roundTotal: (chain: string) => `${prefix}roundtotal:{${part('chain', chain)}}`,
    /** Hash worker → credited difficulty in one bucket of `windowMin` minutes starting at `bucket × windowMin`. */
    hashrate: (chain: string, windowMin: number, bucket: number) =>
      `${prefix}hr:{${part('chain', chain)}}:${part('windowMin', windowMin)}m:${part('bucket', bucket)}`,
    /**
     * The PPLNS share window (payouts): a stream, one entry per credit request, `p` the chain's
     * cumulative credited difficulty after it and `a` its accounts' difficulties; written by
     * the credit script when the window is on, trimmed past the largest window.
     */
    shareWindow: (chain: string) => `${prefix}pplnswin:{${part('chain', chain)}}`,
    /** The share window's cumulative credited difficulty (a float string). */
    shareWindowTotal: (chain: string) => `${prefix}pplnswin:{${part('chain', chain)}}:total`,
    /** Hash block hash → `<window entry id> <position>`: where a block was found in the window. */
    shareWindowFound: (chain: string) => `${prefix}pplnswin:{${part('chain', chain)}}:found`,
    /** Zset block hash → position: found blocks not yet shared out, whose windows the trim keeps. */
    shareWindowPending: (chain: string) => `${prefix}pplnswin:{${part('chain', chain)}}:pending`,
    /** The difficulty the trim keeps behind the newest entry (and behind each pending block); set by the payer. */
    shareWindowKeep: (chain: string) => `${prefix}pplnswin:{${part('chain', chain)}}:keep`,
    /** Hash account → balance in satoshis (integer string): the sum of its ledger entries. */
    balances: (chain: string) => `${prefix}bal:{${part('chain', chain)}}`,
    /** Stream, append-only: every credit, debit, fee and remainder, in satoshis. */
    ledger: (chain: string) => `${prefix}ledger:{${part('chain', chain)}}`,
    /** Hash block hash → JSON of its share-out (or `orphaned`): written once per block. */
    payoutBlocks: (chain: string) => `${prefix}payout:{${part('chain', chain)}}:blocks`,
    /** Hash account → satoshis credited by one block (the earnings of that block per account). */
    payoutBlockCredits: (chain: string, blockHash: string) => {
      if (!BLOCK_HASH.test(blockHash)) {
        throw new TypeError(`block hash ${JSON.stringify(blockHash)} is not 64 hex digits`);
      }
      return `${prefix}payout:{${part('chain', chain)}}:credits:${blockHash}`;
    },
    /** Hash batch id → JSON of a payment batch (intent, sent, failed). */
    payoutBatches: (chain: string) => `${prefix}payout:{${part('chain', chain)}}:batches`,
    /** Zset batch id → creation time (ms): the batches in order. */
    payoutBatchIndex: (chain: string) => `${prefix}payout:{${part('chain', chain)}}:batchidx`,
    /** String: the batch id recorded as intent and not yet settled (at most one). */
    payoutOpenBatch: (chain: string) => `${prefix}payout:{${part('chain', chain)}}:open`,
    /** String: the highest payer fencing epoch that wrote; a lower one is refused. */
    payoutFence: (chain: string) => `${prefix}payout:{${part('chain', chain)}}:fence`,
    /** Hash account → why its payments are held (an address the daemon refuses). */
    payoutHeld: (chain: string) => `${prefix}payout:{${part('chain', chain)}}:held`,
    /** String, short TTL: asks the running payer to pay now (`hashwire payouts pay-now`). */
    payoutPayNow: (chain: string) => `${prefix}payout:{${part('chain', chain)}}:paynow`,
    /**
     * Zset, score 0, read by lexical range: one member per ledger credit, fee or remainder,
     * `<account>|<ts ms, 13 digits>|<block hash>|<type>|<satoshis>`: an account's earnings per
     * block, newest first, in O(log N + its page). Written with the ledger (`share-out.lua`).
     */
    payoutEarningsIndex: (chain: string) => `${prefix}payout:{${part('chain', chain)}}:earnidx`,
    /**
     * Zset, score 0, read by lexical range: one member per payment,
     * `<account>|<ts ms, 13 digits>|<batch id>|<txid>|<satoshis>`. Written with the ledger
     * (`pay-record.lua`).
     */
    payoutPaymentsIndex: (chain: string) => `${prefix}payout:{${part('chain', chain)}}:payidx`,
    /** String: the ledger entry id up to which the two indexes above were filled from the ledger. */
    payoutIndexed: (chain: string) => `${prefix}payout:{${part('chain', chain)}}:indexed`,
    /** Stream, one entry per credited batch, with every accepted share. */
    shareLog: (chain: string) => `${prefix}sharelog:{${part('chain', chain)}}`,
    blocks: (chain: string) => `${prefix}blocks:{${part('chain', chain)}}`,
    blocksIndex: (chain: string) => `${prefix}blocks:{${part('chain', chain)}}:idx`,
    /** Hash block hash → the share that found it, until its block record settles the round. */
    candidates: (chain: string) => `${prefix}blocks:{${part('chain', chain)}}:candidates`,
    /**
     * The chain's event stream (`job.new`, `block.*`, `round.closed`): in the chain's slot, so
     * the scripts that change a round or a block emit their event in the same atomic step.
     */
    events: (chain: string) => `${prefix}events:{${part('chain', chain)}}`,
    /** The pool-wide event stream (`service.*`, `admin.*`, `watch.*`): events of no one chain. */
    poolEvents: () => `${prefix}events:{pool}`,
    /**
     * Hash `<kind> <id>` → `<state> <entry id>`: what the pool stream last said of each service
     * still announced (up or draining), in the stream's slot, so a script compares and emits at once.
     */
    announcedServices: () => `${prefix}announced:{pool}`,
    /**
     * Who looks for expired registrations this round: one SET NX PX lease per refresh interval,
     * so one service of the pool sweeps `announced:{pool}` per interval, not every one of them.
     */
    serviceSweep: () => `${prefix}announced:{pool}:sweep`,
    /**
     * A tiny write a reporter makes before WAIT when its script wrote nothing (a batch already
     * credited): the WAIT then covers every earlier write of the chain's node, that batch's too.
     */
    replicationProbe: (chain: string) => `${prefix}replprobe:{${part('chain', chain)}}`,
    /** Channel a coin daemon's `-blocknotify` publishes block hashes on; the chain's jobmanagers listen. */
    blocknotifyChannel: (chain: string) => `${prefix}ev:blocknotify:${part('chain', chain)}`,
    /** Membership group keys share the group's hash tag. */
    group: (group: string, sub: string) => `${prefix}grp:{${part('group', group)}}:${part('sub', sub)}`,
    /**
     * A watch: its definition, delivery cursors, lease and retry state in one hash. The watch's
     * keys share its id as hash tag, so one script can deliver into its outbox and move its cursor.
     */
    watch: (id: string) => `${prefix}watch:{${part('id', id)}}`,
    /** Set of every watch id (single-key operations only: it is in a slot of its own). */
    watchIndex: () => `${prefix}watches`,
    /** Zset of the api processes delivering watches, by last heartbeat (epoch ms): who shares them. */
    watchWorkers: () => `${prefix}watchworkers`,
    /**
     * Stream a watch with the `ws` endpoint delivers into; live-stream clients subscribe to it as
     * the topic `watch:<id>` (same sequence numbers and resume as the event streams).
     */
    watchOutbox: (id: string) => `${prefix}watchout:{${part('id', id)}}`,
    /**
     * An api token's record, by the SHA-256 of the token (the token itself is never stored).
     * Every token key shares the `{tokens}` hash tag: one slot, so create and revoke are atomic
     * on Redis Cluster too.
     */
    token: (sha256Hex: string) => `${prefix}token:{tokens}:${part('sha256', sha256Hex)}`,
    /** Hash of every token id → its SHA-256: what `GET /v1/tokens` lists and revoke looks up. */
    tokenIndex: () => `${prefix}token:{tokens}:index`,
    /** Prefix of the api's rate-limit counters (one key per token id or client address, with a TTL). */
    rateLimitPrefix: () => `${prefix}ratelimit:`,
    /** Channel a revoked token's id is published on; every api instance drops it within 1 s. */
    tokenRevokedChannel: () => `${prefix}ev:token-revoked`,
  } as const;
}

export type KeyBuilder = ReturnType<typeof createKeyBuilder>;
