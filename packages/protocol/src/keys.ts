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
    /** The current round's credited difficulty, summed (a string); absent until the round's first credit. */
    roundTotal: (chain: string) => `${prefix}roundtotal:{${part('chain', chain)}}`,
    /** Hash worker → credited difficulty in one bucket of `windowMin` minutes starting at `bucket × windowMin`. */
    hashrate: (chain: string, windowMin: number, bucket: number) =>
      `${prefix}hr:{${part('chain', chain)}}:${part('windowMin', windowMin)}m:${part('bucket', bucket)}`,
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
    /**
     * A tiny write a reporter makes before WAIT when its script wrote nothing (a batch already
     * credited): the WAIT then covers every earlier write of the chain's node, that batch's too.
     */
    replicationProbe: (chain: string) => `${prefix}replprobe:{${part('chain', chain)}}`,
    /** Channel a coin daemon's `-blocknotify` publishes block hashes on; the chain's jobmanagers listen. */
    blocknotifyChannel: (chain: string) => `${prefix}ev:blocknotify:${part('chain', chain)}`,
    /** Membership group keys share the group's hash tag. */
    group: (group: string, sub: string) => `${prefix}grp:{${part('group', group)}}:${part('sub', sub)}`,
    watch: (id: string) => `${prefix}watch:${part('id', id)}`,
    token: (sha256Hex: string) => `${prefix}token:${part('sha256', sha256Hex)}`,
  } as const;
}

export type KeyBuilder = ReturnType<typeof createKeyBuilder>;
