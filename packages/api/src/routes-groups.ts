import type { KeyBuilder } from '@hashwire/protocol';
import {
  type GroupView,
  Membership,
  NotMemberError,
  type RedisClient,
  listServices,
} from '@hashwire/registry';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError } from './errors.js';
import { type ApiRoute, noQuery, route } from './route.js';
import { groupName, memberName } from './schemas.js';
import { isServiceGroup, readServiceGroup, refuseServiceMember } from './service-groups.js';

/** Membership groups over HTTP (seeds/002), on the registry's `Membership` (state in Redis only). */

export const GROUP_VERSION_HEADER = 'x-group-version';
/** Session timeout without `?timeout=`, seconds. */
export const DEFAULT_TIMEOUT_S = 10;
export const MAX_TIMEOUT_S = 86_400;

const value = z.unknown().describe('the stored text: as JSON when it is JSON, else as a string');
const groupBody = z.object({
  group: z.string(),
  version: z.number().describe('also in x-group-version; increases on every change'),
  config: value.nullable(),
  endpoints: z.array(z.string()).describe('the live api instances (base URLs)'),
  active_members: z
    .array(z.record(z.string(), value.nullable()))
    .describe(
      "joined members and their configs; in a group named after a service kind, also the pool's live services of that kind (read-only, pool_service: true)",
    ),
  inactive_members: z
    .array(z.record(z.string(), value))
    .describe('members with a config that are not joined'),
});

const groupParams = z.object({ group: groupName }).strict();
const memberParams = z.object({ group: groupName, member: memberName }).strict();
const joinQuery = z
  .object({
    timeout: z.coerce
      .number()
      .positive()
      .max(MAX_TIMEOUT_S)
      .default(DEFAULT_TIMEOUT_S)
      .describe(`session timeout in seconds (default ${DEFAULT_TIMEOUT_S}, at most ${MAX_TIMEOUT_S})`),
  })
  .strict();

const versionHeader = { [GROUP_VERSION_HEADER]: 'the group version; increases on every change' };

/** Stored text back as JSON when it is JSON (`{"opaque": "metadata"}`), as a string otherwise (`db1 config`). */
function shown(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The body as text to store: absent or empty → undefined. A body declared JSON must be JSON (a
 * 400 naming `body` otherwise); anything else is opaque text.
 */
function bodyText(request: FastifyRequest): string | undefined {
  const body = request.body;
  if (body === undefined || body === null || body === '') return undefined;
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : String(body);
  const type = String(request.headers['content-type'] ?? '');
  if (/^application\/([a-z0-9.+-]*\+)?json\b/i.test(type)) {
    try {
      JSON.parse(text);
    } catch (error) {
      throw new ApiError(
        400,
        'bad_request',
        `body: not valid JSON (${(error as Error).message})`,
        'body',
        'body',
      );
    }
  }
  return text;
}

/** Members by name: Redis keeps them by deadline (active) or in hash order (inactive). */
function byName<T extends { id: string }>(members: T[]): T[] {
  return [...members].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}

export interface GroupContext {
  redis: RedisClient;
  keys: KeyBuilder;
  /** Anyone may write (join, heartbeat, leave, set configs), from anywhere. @defaultValue false */
  openGroups?: boolean;
  /**
   * The api listens on loopback only: a write straight from loopback (no `X-Forwarded-For` or
   * `Forwarded`: not relayed by a proxy) needs no token. Every other write needs a read or
   * admin token. Reading a group is public. @defaultValue false
   */
  loopbackOnly?: boolean;
}

const LOOPBACK_PEERS = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** A request from this machine that no proxy relayed (a proxy adds X-Forwarded-For or Forwarded). */
export function directFromLoopback(request: FastifyRequest): boolean {
  const headers = request.headers;
  if (headers['x-forwarded-for'] !== undefined || headers.forwarded !== undefined) return false;
  return LOOPBACK_PEERS.has(request.socket.remoteAddress ?? '');
}

/** Why a membership write was refused off loopback, naming the setting that opens it. */
export const GROUP_WRITE_HINT =
  'membership writes from off loopback need a read or admin token (or the api setting openGroups: true)';

export function groupRoutes(ctx: GroupContext): ApiRoute[] {
  const membership = new Membership(ctx.redis, ctx.keys);
  const endpoints = async () =>
    (await listServices(ctx.redis, ctx.keys, 'api'))
      .filter((s) => s.state === 'up' && s.api)
      .map((s) => s.api as string)
      .sort();
  // A group named after a service kind also lists the pool's live services of that kind; its
  // version counts their changes too (the higher of the two reads has both).
  const services = async (group: string) =>
    isServiceGroup(group) ? await readServiceGroup(ctx.redis, ctx.keys, group) : null;
  const answer = async (reply: FastifyReply, group: string, view: GroupView) => {
    const pool = await services(group);
    const version = Math.max(view.version, pool?.version ?? 0);
    reply.header(GROUP_VERSION_HEADER, String(version));
    const served = [...(pool?.members ?? [])].map(([id, member]) => ({ id, member }));
    const joined = view.active
      .filter((m) => !pool?.members.has(m.id))
      .map((m) => ({ id: m.id, member: shown(m.config) }));
    return {
      group,
      version,
      config: shown(view.config),
      endpoints: await endpoints(),
      active_members: byName([...served, ...joined]).map((m) => ({ [m.id]: m.member })),
      inactive_members: byName(view.inactive).map((m) => ({ [m.id]: shown(m.config) })),
    };
  };
  /** 409 for a write to a member that is one of the pool's services. */
  const writable = (group: string, member: string, what: string) =>
    refuseServiceMember(ctx.redis, ctx.keys, group, member, what);
  const heartbeat = async (reply: FastifyReply, group: string, member: string) => {
    await writable(group, member, 'heartbeated');
    try {
      const pool = await services(group);
      const version = Math.max(await membership.heartbeat(group, member), pool?.version ?? 0);
      reply.header(GROUP_VERSION_HEADER, String(version));
      return version;
    } catch (error) {
      if (!(error instanceof NotMemberError)) throw error;
      const view = await membership.get(group);
      reply.header(GROUP_VERSION_HEADER, String(view.version));
      throw new ApiError(
        404,
        'not_member',
        `path member: ${member} is not an active member of ${group}; join again (PUT)`,
        'member',
        'path',
      );
    }
  };
  const poolService = { 409: "the member is one of the pool's services: read-only" };
  const notMember = { 404: 'not an active member (expired or left): join again', ...poolService };
  // Closed by default: a write needs a token unless the groups are opened on purpose, or it
  // comes straight from this machine to an api that listens on loopback only.
  const write = ctx.openGroups
    ? ({ access: 'public' } as const)
    : ({
        access: 'read',
        accessHint: GROUP_WRITE_HINT,
        ...(ctx.loopbackOnly && { publicWhen: directFromLoopback }),
      } as const);
  return [
    route({
      method: 'GET',
      url: '/v1/groups/:group',
      summary: 'The group: version, config, endpoints, active and inactive members',
      tag: 'groups',
      params: groupParams,
      query: noQuery,
      response: groupBody,
      headers: versionHeader,
      handler: async ({ params, reply }) => answer(reply, params.group, await membership.get(params.group)),
    }),
    route({
      method: 'PUT',
      url: '/v1/groups/:group/config',
      summary: 'Sets the group config (an empty body removes it)',
      tag: 'groups',
      ...write,
      params: groupParams,
      query: noQuery,
      body: { description: 'the group config, opaque' },
      response: groupBody,
      headers: versionHeader,
      handler: async ({ params, request, reply }) =>
        answer(reply, params.group, await membership.setGroupConfig(params.group, bodyText(request) ?? null)),
    }),
    route({
      method: 'PUT',
      url: '/v1/groups/:group/:member',
      summary: 'Joins the group (creating it); the body, if any, is the member’s metadata',
      tag: 'groups',
      ...write,
      params: memberParams,
      query: joinQuery,
      body: { description: 'opaque member metadata (kept as its persistent config)' },
      response: groupBody,
      headers: versionHeader,
      errors: poolService,
      handler: async ({ params, query, request, reply }) => {
        const config = bodyText(request);
        await writable(params.group, params.member, 'joined');
        const view = await membership.join(params.group, params.member, {
          timeoutMs: Math.max(1, Math.round(query.timeout * 1000)),
          ...(config !== undefined && { config }),
        });
        return answer(reply, params.group, view);
      },
    }),
    route({
      method: 'HEAD',
      url: '/v1/groups/:group/:member',
      summary: 'Heartbeat: extends the session; x-group-version tells whether the group changed',
      tag: 'groups',
      ...write,
      params: memberParams,
      query: noQuery,
      headers: versionHeader,
      errors: notMember,
      handler: async ({ params, reply }) => {
        await heartbeat(reply, params.group, params.member);
      },
    }),
    route({
      method: 'GET',
      url: '/v1/groups/:group/:member',
      summary: 'Heartbeat that also returns the group',
      tag: 'groups',
      ...write,
      params: memberParams,
      query: noQuery,
      response: groupBody,
      headers: versionHeader,
      errors: notMember,
      handler: async ({ params, reply }) => {
        await heartbeat(reply, params.group, params.member);
        return answer(reply, params.group, await membership.get(params.group));
      },
    }),
    route({
      method: 'DELETE',
      url: '/v1/groups/:group/:member',
      summary: 'Leaves the group (its config stays: it is listed inactive)',
      tag: 'groups',
      ...write,
      params: memberParams,
      query: noQuery,
      response: groupBody,
      headers: versionHeader,
      errors: poolService,
      handler: async ({ params, reply }) => {
        await writable(params.group, params.member, 'removed');
        return answer(reply, params.group, await membership.leave(params.group, params.member));
      },
    }),
    route({
      method: 'PUT',
      url: '/v1/groups/:group/:member/config',
      summary: 'Sets a member’s persistent config, joined or not (an empty body removes it)',
      tag: 'groups',
      ...write,
      params: memberParams,
      query: noQuery,
      body: { description: 'the member config, opaque' },
      response: groupBody,
      headers: versionHeader,
      errors: poolService,
      handler: async ({ params, request, reply }) => {
        const config = bodyText(request) ?? null;
        await writable(params.group, params.member, 'configured');
        return answer(
          reply,
          params.group,
          await membership.setMemberConfig(params.group, params.member, config),
        );
      },
    }),
  ];
}
