import { type EventName, type KeyBuilder, POOL_STREAM } from '@hashwire/protocol';
import type { RedisClient } from './redis.js';

/** Entries a stream keeps (approximate, `XADD MAXLEN ~`), as for the chains' streams. */
export const EVENTS_MAX_LEN = 100_000;

/**
 * Appends one event to a stream: `events:{<chain>}` for a chain's event, `events:{pool}` for the
 * pool's (services, admin actions, watches). Returns the entry id, the event's sequence number.
 */
export async function appendEvent(
  redis: RedisClient,
  keys: KeyBuilder,
  type: EventName,
  data: unknown,
  stream: string = POOL_STREAM,
): Promise<string> {
  const key = stream === POOL_STREAM ? keys.poolEvents() : keys.events(stream);
  const id = await redis.xadd(
    key,
    'MAXLEN',
    '~',
    String(EVENTS_MAX_LEN),
    '*',
    'type',
    type,
    'ts',
    String(Date.now()),
    'data',
    JSON.stringify(data),
  );
  return id as string;
}
