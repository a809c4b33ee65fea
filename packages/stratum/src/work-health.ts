import type { JobmanagerHealth } from '@hashwire/protocol';

/** What the job feed knows of one jobmanager of its group. */
export interface MemberView {
  id: string;
  /** It sent something (job, health, subscribe reply) recently: our subscription is alive. */
  heard: boolean;
  /** Its last `health` push, null before the first. */
  health: JobmanagerHealth | null;
}

export interface WorkInput {
  now: number;
  members: MemberView[];
  /** The newest job miners hold; `createdAt` as the feed trusts it (never later than received). */
  latest: { jobId: string; height: number; createdAt: number } | null;
  maxJobAgeMs: number;
}

export interface WorkVerdict {
  /** Some jobmanager we hear from says it has a daemon (or has not said otherwise yet). */
  groupHealthy: boolean;
  /** The newest job is older than `maxJobAgeMs`: nobody refreshed the work. */
  workStale: boolean;
  /** When the work went stale (ms), meaningful when `workStale`. */
  staleSince: number;
  /** For the operator: why the work is not fresh, one entry per cause and jobmanager. */
  reasons: string[];
}

/**
 * Whether miners still hold real work, from the jobmanagers' health pushes and the age of the
 * newest job. A jobmanager whose daemons answer but give no template (not connected to peers,
 * initial block download, warming up) may still say healthy; the job's age catches that, and
 * every jobmanager gone at once, whatever they report.
 */
export function judgeWork(input: WorkInput): WorkVerdict {
  const { now, members, latest, maxJobAgeMs } = input;
  const groupHealthy = members.some((m) => m.heard && (m.health === null || m.health.healthy));
  const ageMs = latest ? now - latest.createdAt : 0;
  const workStale = latest !== null && ageMs > maxJobAgeMs;
  const reasons: string[] = [];
  if (workStale && latest) {
    reasons.push(
      `newest job ${latest.jobId} (height ${latest.height}) is ${Math.round(ageMs / 1000)} s old, over ${Math.round(maxJobAgeMs / 1000)} s: no jobmanager sent fresh work`,
    );
  }
  if (members.length === 0) reasons.push('no jobmanager reachable');
  for (const m of members) {
    if (!m.heard) reasons.push(`${m.id}: silent (not subscribed)`);
    else if (m.health && !m.health.healthy)
      reasons.push(`${m.id}: ${m.health.lastError ?? 'no daemon answers'}`);
    else if (workStale) reasons.push(`${m.id}: ${m.health?.lastError ?? 'says healthy but sent no new job'}`);
  }
  return { groupHealthy, workStale, staleSince: latest ? latest.createdAt + maxJobAgeMs : now, reasons };
}
