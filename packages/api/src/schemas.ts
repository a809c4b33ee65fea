import { isShareName } from '@hashwire/protocol';
import { z } from 'zod';

/** Path and query schemas shared by the routes; each message says what is allowed. */

const KEY_PART = /^[A-Za-z0-9._:-]{1,200}$/;
const KEY_PART_RULE = '1–200 characters of A-Z a-z 0-9 . _ : -';

export const chainName = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 characters of A-Z a-z 0-9 . _ -')
  .describe('chain name, as in the pool config (e.g. `ltc`)');

/** An account is the payout address miners authorize with: the one share-name rule of `protocol`. */
export const accountName = z
  .string()
  .refine((v) => isShareName(v), 'must be 1–128 characters without whitespace, control characters or |')
  .describe('the payout address miners authorize with');

export const blockHash = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
  .transform((v) => v.toLowerCase())
  .describe('block hash, 64 hex digits');

export const groupName = z.string().regex(KEY_PART, `must be ${KEY_PART_RULE}`).describe('group name');
export const memberName = z
  .string()
  .regex(KEY_PART, `must be ${KEY_PART_RULE}`)
  .refine((v) => v !== 'config', 'config is the group config, not a member')
  .describe('member name (e.g. a host name)');

export const MAX_PAGE = 500;

/** `limit` and `cursor` of every list. */
export const pageQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(50).describe(`items per page, 1–${MAX_PAGE}`),
    cursor: z.string().max(512).optional().describe('`next` of the previous page; absent for the first page'),
  })
  .strict();

export const hashrate = z
  .object({
    '5m': z.number().describe('hashes per second over the last 5 minutes'),
    '1h': z.number(),
    '24h': z.number(),
  })
  .describe('hashes per second, from the credited (accepted) difficulty');

export const workerCounters = z.object({
  name: z.string().describe('worker name ("" for shares sent as the bare account)'),
  lastShareMs: z.number().describe('time of its latest share, epoch ms; 0 if none'),
  hashrate: z.object({ '1m': z.number(), '5m': z.number(), '60m': z.number() }),
  accepted: z.number(),
  stale: z.number(),
  rejected: z.number().describe('duplicate + low difficulty + invalid'),
  duplicate: z.number(),
  lowdiff: z.number(),
  invalid: z.number(),
  acceptedDiff: z.number().describe('difficulty credited over its lifetime'),
});

export const blockState = z.enum(['submitted', 'accepted', 'rejected', 'stale', 'confirmed', 'orphaned']);

export const block = z.object({
  hash: z.string(),
  chain: z.string(),
  height: z.number(),
  state: blockState,
  confirmations: z.number().nullable().describe('as last counted by a reporter; null before'),
  finder: z
    .object({ account: z.string(), worker: z.string(), shareId: z.string() })
    .nullable()
    .describe('the share that found it; null when no reporter credited it (not found here)'),
  submittedAt: z.number().nullable(),
  updatedAt: z.number(),
  reason: z.string().nullable().describe('why it was rejected, when it was'),
  round: z
    .object({ accounts: z.number(), totalDiff: z.number(), closedAt: z.number(), returned: z.boolean() })
    .nullable()
    .describe('the round it closed'),
});

export function page<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    next: z.string().nullable().describe('cursor of the next page; null on the last'),
  });
}
