import { type AdminEventData, type KeyBuilder, adminEventType } from '@hashwire/protocol';
import { type RedisClient, appendEvent } from '@hashwire/registry';
import type { Principal } from './auth.js';

/** Who acted, as the audit trail names it: a token's id and name, never the token. */
export type AuditActor = AdminEventData['actor'];

/** The actor of a principal (`hashwire tokens`, which needs no token, acts as `{ kind: 'admin', tokenId: 'cli' }`). */
export function actorOf(principal: Principal): AuditActor {
  if (principal.kind === 'public')
    throw new TypeError('audit: an action without a token is not an admin action');
  return {
    tokenId: principal.tokenId,
    ...(principal.name !== undefined && { name: principal.name }),
    kind: principal.kind,
  };
}

/**
 * Records one admin action on the pool's event stream as `admin.<action>` (`admin.token.create`,
 * `admin.drain`, `admin.watch.delete`…): who did it, on what, and any `extra` fields (an
 * outcome, a kind). Returns the event's sequence number.
 */
export async function audit(
  redis: RedisClient,
  keys: KeyBuilder,
  principal: Principal,
  action: string,
  target?: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const actor = actorOf(principal);
  const data: AdminEventData = { ...extra, actor, ...(target !== undefined ? { target } : {}) };
  return appendEvent(redis, keys, adminEventType(action), data);
}
