import { createHash } from 'node:crypto';
import { type KeyBuilder, SERVICE_KINDS, type ServiceKind } from '@hashwire/protocol';
import { type RedisClient, type ServiceInfo, defineLuaScripts, listServices } from '@hashwire/registry';
import { ApiError } from './errors.js';

/*
 * The pool's own services as members of their kind's group: `GET /v1/groups/stratum` lists the
 * live stratum servers of the registry among its active members. They are the registry's, not
 * the group's: they cannot be joined, heartbeated, left or configured over HTTP (409), and the
 * group version moves when they come, go, restart or change state (group-services.lua).
 */

const runScript = defineLuaScripts(new URL('../lua/', import.meta.url), { 'group-services': 2 }, 'hwapi');

/** What a service member shows: where it is and how it is, from its registry entry. */
export interface ServiceMember {
  pool_service: true;
  kind: ServiceKind;
  /** '' for a service of every chain (the api). */
  chain: string;
  state: ServiceInfo['state'];
  version: string;
  /** Where its clients connect: the miner port (stratum), the API (api); null for the others. */
  url: string | null;
  /** The public endpoints only (`stratum`, `api`): RPC and status ports are not shown to anyone reading a group. */
  endpoints: Record<string, string>;
  load: Record<string, number>;
  startedAt: number;
}

export function isServiceGroup(group: string): group is ServiceKind {
  return (SERVICE_KINDS as readonly string[]).includes(group);
}

const ENDPOINTS = ['rpc', 'http', 'stratum', 'agent', 'api'] as const;
/** Where clients connect; the others (RPC, status, agent) are for the pool's own processes. */
const PUBLIC_ENDPOINTS = ['stratum', 'api'] as const;

function memberOf(service: ServiceInfo): ServiceMember {
  const endpoints: Record<string, string> = {};
  for (const name of PUBLIC_ENDPOINTS) {
    const value = service[name];
    if (typeof value === 'string' && value !== '') endpoints[name] = value;
  }
  const url = endpoints.stratum ? `stratum+tcp://${endpoints.stratum}` : (endpoints.api ?? null);
  return {
    pool_service: true,
    kind: service.kind as ServiceKind,
    chain: service.chain,
    state: service.state,
    version: service.version,
    url,
    endpoints,
    load: { ...(service.loadFigures ?? {}) },
    startedAt: service.startedAt,
  };
}

/** What identifies the set of services: not their load, which changes at every refresh. */
function fingerprint(services: readonly ServiceInfo[]): string {
  const lines = services
    .map((s) =>
      [s.id, s.pid, s.startedAt, s.state, s.version, ...ENDPOINTS.map((e) => s[e] ?? '')].join('\t'),
    )
    .sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

export interface ServiceGroupSnapshot {
  members: Map<string, ServiceMember>;
  /** The group version once the services listed here are counted in it. */
  version: number;
}

/** The live services of `kind`, with the group version bumped if they changed since last seen. */
export async function readServiceGroup(
  redis: RedisClient,
  keys: KeyBuilder,
  kind: ServiceKind,
): Promise<ServiceGroupSnapshot> {
  const services = (await listServices(redis, keys, kind)).sort((a, b) =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
  );
  const version = Number(
    await runScript(
      redis,
      'group-services',
      [keys.group(kind, 'services'), keys.group(kind, 'version')],
      [fingerprint(services)],
    ),
  );
  return { members: new Map(services.map((s) => [s.id, memberOf(s)])), version };
}

/** Refuses a write to a member that is one of the pool's services: 409 naming it. */
export async function refuseServiceMember(
  redis: RedisClient,
  keys: KeyBuilder,
  group: string,
  member: string,
  what: string,
): Promise<void> {
  if (!isServiceGroup(group)) return;
  const { members } = await readServiceGroup(redis, keys, group);
  const service = members.get(member);
  if (!service) return;
  throw new ApiError(
    409,
    'pool_service',
    `path member: ${member} is a ${group} of the pool (${service.url ?? 'registered'}); its membership is the registry's, it cannot be ${what} over HTTP`,
    'member',
    'path',
  );
}
