import { POOL_STREAM, isShareName } from '@hashwire/protocol';
import type { Principal } from './auth.js';

/**
 * The live stream's topics. A topic is either a glob over event names (`block.*`,
 * `account.<addr>.*`, `service.stratum.*`, `*`) or a state topic (`pool`, `services`,
 * `chain:<chain>`, `blocks:<chain>`, `account:<chain>:<addr>`): a snapshot of that state when
 * subscribed, then the events that change it. Every topic comes down to event filters — a glob,
 * the streams it reads and who may see what it matches — and the stream hub indexes those
 * filters, so an event costs one match per distinct filter whatever the number of sockets.
 */

/** Why a topic was refused: `bad_request` (malformed) or `forbidden` (not for this token). */
export class TopicError extends Error {
  override readonly name = 'TopicError';
  constructor(
    readonly code: 'bad_request' | 'forbidden' | 'not_found',
    message: string,
  ) {
    super(message);
  }
}

export type StateTopic =
  | { kind: 'pool' }
  | { kind: 'services' }
  | { kind: 'chain'; chain: string }
  | { kind: 'blocks'; chain: string }
  | { kind: 'account'; chain: string; account: string };

export interface EventFilter {
  /** The glob over event names. */
  glob: string;
  /** The one stream it reads, or null for every stream. */
  stream: string | null;
}

export interface ParsedTopic {
  topic: string;
  /** A stream read only while subscribed (a watch's outbox): its name and key. */
  follow?: { stream: string; key: string };
  /** What the subscribe answer carries as this topic's current state; null for event globs. */
  state: StateTopic | null;
  filters: EventFilter[];
}

/** Longest topic, and most `*` in a glob: a pattern stays cheap to match. */
export const MAX_TOPIC_LENGTH = 200;
export const MAX_GLOB_STARS = 4;

const GLOB = /^[A-Za-z0-9_.*-]+$/;
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * A glob as a matcher: `*` matches any run of characters, dots included (`account.A.*` matches
 * `account.A.block.accepted`); everything else is literal. Anchored, at most four stars, so a
 * match is linear in practice.
 */
export function compileGlob(glob: string): (name: string) => boolean {
  if (glob === '*') return () => true;
  if (!glob.includes('*')) return (name) => name === glob;
  const parts = glob.split('*').map((p) => p.replace(/[.\\^$+?()[\]{}|-]/g, '\\$&'));
  const re = new RegExp(`^${parts.join('.*')}$`, 's');
  return (name) => re.test(name);
}

function checkGlob(glob: string): void {
  if (!GLOB.test(glob))
    throw new TopicError(
      'bad_request',
      `topic ${JSON.stringify(glob)}: an event glob may hold only letters, digits, _ . - and *`,
    );
  if ([...glob].filter((c) => c === '*').length > MAX_GLOB_STARS)
    throw new TopicError('bad_request', `topic ${glob}: at most ${MAX_GLOB_STARS} * in a glob`);
  if (glob.includes('**')) throw new TopicError('bad_request', `topic ${glob}: ** is not allowed (use *)`);
}

export interface TopicContext {
  /** The chains this pool serves. */
  chains: ReadonlySet<string>;
  /** The key of a watch's outbox stream (`keys.watchOutbox`). */
  watchOutbox: (id: string) => string;
}

const WATCH_ID = /^[A-Za-z0-9_-]{1,128}$/;

function chainOf(ctx: TopicContext, topic: string, chain: string | undefined): string {
  if (chain === undefined || !NAME.test(chain))
    throw new TopicError('bad_request', `topic ${topic}: expected a chain name after the colon`);
  if (!ctx.chains.has(chain))
    throw new TopicError(
      'not_found',
      `topic ${topic}: no chain ${chain} (this pool has: ${[...ctx.chains].join(', ') || 'none'})`,
    );
  return chain;
}

/** Parses one topic and checks the principal may subscribe to it (403 as a TopicError). */
export function parseTopic(ctx: TopicContext, topic: unknown, principal: Principal): ParsedTopic {
  if (typeof topic !== 'string' || topic === '' || topic.length > MAX_TOPIC_LENGTH)
    throw new TopicError(
      'bad_request',
      `topic: expected a string of 1–${MAX_TOPIC_LENGTH} characters, got ${JSON.stringify(topic)?.slice(0, 80)}`,
    );
  const parsed = parseShape(ctx, topic);
  if (parsed.follow && principal.kind !== 'admin')
    throw new TopicError('forbidden', `topic ${topic}: a watch's stream needs an admin token`);
  for (const filter of parsed.filters) checkAllowed(topic, filter.glob, principal);
  return parsed;
}

function parseShape(ctx: TopicContext, topic: string): ParsedTopic {
  if (topic === 'pool')
    return {
      topic,
      state: { kind: 'pool' },
      filters: [
        { glob: 'block.*', stream: null },
        { glob: 'round.closed', stream: null },
      ],
    };
  if (topic === 'services')
    return { topic, state: { kind: 'services' }, filters: [{ glob: 'service.*', stream: POOL_STREAM }] };
  const colon = topic.indexOf(':');
  if (colon === -1) {
    checkGlob(topic);
    return { topic, state: null, filters: [{ glob: topic, stream: null }] };
  }
  const [kind, ...rest] = topic.split(':');
  switch (kind) {
    case 'chain': {
      const chain = chainOf(ctx, topic, rest.length === 1 ? rest[0] : undefined);
      return {
        topic,
        state: { kind: 'chain', chain },
        filters: ['block.*', 'round.closed', 'job.new'].map((glob) => ({ glob, stream: chain })),
      };
    }
    case 'blocks': {
      const chain = chainOf(ctx, topic, rest.length === 1 ? rest[0] : undefined);
      return { topic, state: { kind: 'blocks', chain }, filters: [{ glob: 'block.*', stream: chain }] };
    }
    case 'account': {
      const [chainPart, ...accountParts] = rest;
      const chain = chainOf(ctx, topic, accountParts.length > 0 ? chainPart : undefined);
      // An account may hold colons (it is what miners authorize with), never a glob star.
      const account = accountParts.join(':');
      if (!isShareName(account) || account.includes('*'))
        throw new TopicError(
          'bad_request',
          `topic ${topic}: expected account:<chain>:<account> (an account has no whitespace, | or *)`,
        );
      return {
        topic,
        state: { kind: 'account', chain, account },
        filters: [{ glob: `account.${account}.*`, stream: chain }],
      };
    }
    case 'watch': {
      const id = rest.length === 1 ? rest[0]! : '';
      if (!WATCH_ID.test(id))
        throw new TopicError(
          'bad_request',
          `topic ${topic}: expected watch:<id> (the id POST /v1/watches gave)`,
        );
      const stream = `watch:${id}`;
      // What a watch delivers is for admins (watches are an admin action): the glob below names it.
      return {
        topic,
        state: null,
        follow: { stream, key: ctx.watchOutbox(id) },
        filters: [{ glob: '*', stream }],
      };
    }
    default:
      throw new TopicError(
        'bad_request',
        `topic ${topic}: unknown kind ${kind}; state topics are pool, services, chain:<chain>, blocks:<chain>, account:<chain>:<account>, watch:<id>; anything else is a glob over event names (no colon)`,
      );
  }
}

/** The scope an event is filtered by: who may see what. */
export type Scope = 'public' | 'read' | 'admin' | `account:${string}`;

export function scopeOf(principal: Principal): Scope {
  if (principal.kind === 'account') return `account:${principal.account}`;
  return principal.kind;
}

/** Event names only an admin may see: the audit trail and the watches. */
function adminOnly(name: string): boolean {
  return name.startsWith('admin.') || name.startsWith('watch.');
}

/**
 * Refuses at subscribe time what is plainly not for this principal: a glob that names admin
 * events, or another account's events for an account token. Broader globs (`*`) are allowed;
 * what they match is then filtered per event by `visible`.
 */
function checkAllowed(topic: string, glob: string, principal: Principal): void {
  const literal = glob.split('*')[0] ?? '';
  if (principal.kind !== 'admin' && (adminOnly(literal) || literal === 'admin' || literal === 'watch'))
    throw new TopicError(
      'forbidden',
      `topic ${topic}: admin and watch events need an admin token${principal.kind === 'public' ? ' (none given)' : `; this is a ${principal.kind} token`}`,
    );
  if (principal.kind === 'account' && literal.startsWith('account.')) {
    const own = `account.${principal.account}.`;
    if (!(literal.length >= own.length ? literal.startsWith(own) : own.startsWith(literal)))
      throw new TopicError('forbidden', `topic ${topic}: this token reads only account ${principal.account}`);
  }
}

/**
 * Whether an event reaches a scope: admin events only to admins; for an account token, only
 * events that concern no account or its own.
 */
export function visible(scope: Scope, type: string, account: string | undefined): boolean {
  if (scope === 'admin') return true;
  if (adminOnly(type)) return false;
  if (scope.startsWith('account:')) return account === undefined || account === scope.slice(8);
  return true;
}
