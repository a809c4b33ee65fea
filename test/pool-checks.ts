import { CHAIN, type MinerGroup, type Pool } from './pool-harness.js';

// What the end-to-end operations tests check after a run, each returning the problems it
// found in words (which miner, which block), so a failure says what went wrong.

/** One operator action: restarting `id` between `start` and `end`. */
export interface Phase {
  id: string;
  kind: 'jobmanager' | 'stratum' | 'reporter';
  start: number;
  end: number;
  /** Miners HAProxy had on the server right before (stratum restarts). */
  minersOnIt: number;
}

/**
 * A stratum restart moves each of its miners exactly once: sent away with `client.reconnect`,
 * reconnected once, resumed with the extranonce1 it had from the start. Nothing else makes a
 * miner reconnect or disconnect.
 */
export function checkReconnects(
  group: MinerGroup,
  phases: readonly Phase[],
): { problems: string[]; perPhase: Record<string, number> } {
  const problems: string[] = [];
  const perPhase: Record<string, number> = {};
  const phaseOf = (at: number) => phases.find((p) => p.start <= at && at <= p.end);
  for (const event of group.reconnects) {
    const phase = phaseOf(event.at);
    const worker = `worker ${event.worker} (${group.miners.stats().workers[event.worker]?.username})`;
    if (!phase) problems.push(`${worker} reconnected (${event.reason}) outside any restart`);
    else perPhase[phase.id] = (perPhase[phase.id] ?? 0) + 1;
    if (!event.resumed) problems.push(`${worker} was not resumed after ${event.reason} (${phase?.id})`);
    if (event.extranonce1 !== group.extranonce1[event.worker]) {
      problems.push(
        `${worker} came back with extranonce1 ${event.extranonce1}, had ${group.extranonce1[event.worker]} (${phase?.id})`,
      );
    }
  }
  for (const phase of phases) {
    const events = group.reconnects.filter((e) => phaseOf(e.at) === phase);
    if (phase.kind !== 'stratum') {
      if (events.length > 0) problems.push(`${events.length} reconnects while ${phase.id} restarted`);
      continue;
    }
    if (phase.minersOnIt === 0)
      problems.push(`${phase.id} held no miner when it was stopped: its drain moved nobody`);
    for (const e of events.filter((e) => e.reason !== 'client.reconnect')) {
      problems.push(
        `worker ${e.worker} was cut off (${e.reason}) instead of sent away while ${phase.id} drained`,
      );
    }
    const byWorker = new Map<number, number>();
    for (const e of events) byWorker.set(e.worker, (byWorker.get(e.worker) ?? 0) + 1);
    for (const [worker, n] of byWorker) {
      if (n > 1) problems.push(`worker ${worker} reconnected ${n} times while ${phase.id} restarted`);
    }
    if (byWorker.size !== phase.minersOnIt) {
      problems.push(
        `${phase.id} held ${phase.minersOnIt} miners (HAProxy scur) but ${byWorker.size} reconnected while it restarted`,
      );
    }
  }
  const disconnects = group.disconnects.filter((d) => {
    const phase = phaseOf(d.at);
    return !phase || phase.kind !== 'stratum';
  });
  for (const d of disconnects)
    problems.push(`worker ${d.worker} disconnected outside a stratum restart: ${d.reason}`);
  group.miners.stats().workers.forEach((w, i) => {
    if (w.extranonce1 !== group.extranonce1[i]) {
      problems.push(
        `worker ${i} ends with extranonce1 ${w.extranonce1}, started with ${group.extranonce1[i]}`,
      );
    }
  });
  // Enough to see the pattern; the count says how far it went.
  const shown =
    problems.length > 30 ? [...problems.slice(0, 30), `… and ${problems.length - 30} more`] : problems;
  return { problems: shown, perPhase };
}

/** A block record in `blocks:{chain}` (the fields the tests read). */
export interface BlockRecord {
  hash: string;
  height: number;
  state: string;
  reason?: string;
  jobId: string;
  jmId: string;
  shareId: string;
  submittedAt: number;
  confirmations?: number;
}

/**
 * Every block the pool found was judged by litecoind and none was invalid: accepted ones (some
 * later confirmed or orphaned) and ones that lost a race to a sibling at their height
 * (`inconclusive`: valid, kept as a fork) are all in the node's block index, and no chain tip
 * the node knows is invalid.
 */
export async function blockOutcomes(
  pool: Pool,
): Promise<{ problems: string[]; counts: Record<string, number> }> {
  const records = await blockRecords(pool);
  const counts: Record<string, number> = {};
  const problems: string[] = [];
  for (const r of records) {
    const key = r.state === 'rejected' ? `rejected:${r.reason}` : r.state;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  const accepted = records.filter((r) => r.state !== 'rejected' && r.state !== 'submitted');
  if (accepted.length === 0) problems.push(`no block accepted among ${records.length} submitted`);
  const rpc = pool.ltc.rpc[0]!;
  for (const r of records) {
    const what = `block ${r.hash} at ${r.height} (${r.jmId}, ${r.state}${r.reason ? `: ${r.reason}` : ''})`;
    if (r.state === 'submitted') problems.push(`${what} never got an answer from litecoind`);
    else if (r.state === 'rejected' && r.reason !== 'inconclusive') problems.push(`${what} rejected`);
    else {
      const header = await rpc.call<{ height: number }>('getblockheader', [r.hash]).catch(() => null);
      if (header?.height !== r.height) problems.push(`${what} is not in litecoind's block index`);
    }
  }
  const tips = await rpc.call<{ hash: string; height: number; status: string }[]>('getchaintips', []);
  for (const tip of tips.filter((t) => t.status === 'invalid')) {
    problems.push(`litecoind holds an invalid chain tip ${tip.hash} at ${tip.height}`);
  }
  return { problems, counts };
}

/**
 * A stratum server's block candidates: `/stats` (`shares.blocks` candidates, `jobs.blocksHeld`
 * still waiting for a jobmanager) and `hashwire_blocks_total` by state.
 */
/** Every block record of the pool's chain, as jobmanagers and reporters wrote them. */
export async function blockRecords(pool: Pool): Promise<BlockRecord[]> {
  return (await pool.redis.hvals(pool.keys.blocks(CHAIN))).map((r) => JSON.parse(r) as BlockRecord);
}

export interface StratumBlockCounts {
  candidates: number;
  held: number;
  [state: string]: number;
}

export async function stratumBlockCounts(pool: Pool, id: string): Promise<StratumBlockCounts> {
  const { body } = await pool.http<{ jobs: { blocksHeld: number }; shares: { blocks: number } }>(
    'stratum',
    id,
    '/stats',
  );
  const http = await pool.redis.hget(pool.keys.service('stratum', id), 'http');
  const text = await (await fetch(`${http}/metrics`)).text();
  const counts: StratumBlockCounts = { held: body.jobs.blocksHeld, candidates: body.shares.blocks };
  for (const [, state, value] of text.matchAll(
    /^hashwire_blocks_total\{[^}]*state="(\w+)"[^}]*\} (\d+)$/gm,
  )) {
    counts[state!] = Number(value);
  }
  return counts;
}
