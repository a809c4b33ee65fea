/** Event types of the `events` stream, the watchers and the live stream. */
export const EventType = {
  JobNew: 'job.new',
  BlockFound: 'block.found',
  BlockSubmitted: 'block.submitted',
  BlockAccepted: 'block.accepted',
  BlockRejected: 'block.rejected',
  BlockConfirmed: 'block.confirmed',
  BlockOrphaned: 'block.orphaned',
  RoundClosed: 'round.closed',
  WorkerOnline: 'worker.online',
  WorkerOffline: 'worker.offline',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

export type ServiceEventType = `service.${string}.${'up' | 'draining' | 'down'}`;
export type AdminEventType = `admin.${string}`;

export interface PoolEvent<T = unknown> {
  seq: string;
  type: EventType | ServiceEventType | AdminEventType;
  ts: number;
  data: T;
}

export function serviceEventType(kind: string, state: 'up' | 'draining' | 'down'): ServiceEventType {
  return `service.${kind}.${state}`;
}
