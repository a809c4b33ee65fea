import { createHash } from 'node:crypto';
import type { ServiceInfo } from '@hashwire/registry';
import { z } from 'zod';
import {
  type HaproxyApiRoute,
  apiRouteSchema,
  apiServerCheckKeywords,
  apiServerKeywords,
} from './haproxy-api.js';
import { compileTemplate, oneLine, parseInput, port, positiveInt, word } from './input.js';

/** Health and agent checks of every stratum server (rendered ones and those added at runtime). */
export interface ServerCheckOptions {
  /** Interval of the connect health check. @defaultValue 2000 */
  intervalMs?: number;
  /** Good checks before a server is up. @defaultValue 2 */
  rise?: number;
  /** Failed checks before a server is down. @defaultValue 3 */
  fall?: number;
  /** Interval of the agent check (the server's own up / drain / down). @defaultValue 2000 */
  agentIntervalMs?: number;
}

/** One stratum server in the backend. */
export interface HaproxyServer {
  /** HAProxy server name: `haproxyServerName(serviceId)`. */
  name: string;
  /** IP address or host name the miners' connections go to. */
  address: string;
  port: number;
  /** Port of the server's agent-check listener; without it the server has no agent check. */
  agentPort?: number;
  /** Address of the agent when it is not `address`. */
  agentAddress?: string;
}

/** One public stratum listener (and its TLS twin) and the backend of servers behind it. */
export interface HaproxyRoute {
  frontend?: {
    /** @defaultValue 'stratum_in' (the first route); required on further routes */
    name?: string;
    /** Address to listen on; empty for every IPv4 address. @defaultValue '' */
    bind?: string;
    /** The public stratum port. @defaultValue 3333 (the first route); required on further routes */
    port?: number;
    /** `stratum+ssl`: a second listener that ends TLS with this certificate. */
    tls?: {
      port: number;
      /** PEM file with the certificate chain and its key. */
      certificate: string;
      /** @defaultValue the frontend's `bind` */
      bind?: string;
    };
  };
  backend?: {
    /** @defaultValue 'stratum' (the first route); required on further routes */
    name?: string;
    /** Connection attempts on a server before giving up (then redispatched). @defaultValue 3 */
    retries?: number;
    check?: ServerCheckOptions;
  };
  /** Stratum servers known at render time (more are added at runtime by the follower). @defaultValue [] */
  servers?: HaproxyServer[];
}

/** Everything `renderHaproxy` needs; a plain object the CLI maps the pool config into. */
export interface HaproxyRenderInput {
  /** Path of the runtime API socket (admin level): the current worker's, in master-worker mode. */
  statsSocket: string;
  /**
   * Connection limit of the process and of the stratum frontend. Omitted, HAProxy derives it from
   * the file descriptor limit (`ulimit -n`); a value above what that limit allows stops HAProxy
   * from starting (it needs about two descriptors per connection).
   */
  maxconn?: number;
  /** A `log` target line, e.g. `stderr format raw local0 info`; omitted: no logging. */
  log?: string;
  /** The first (or only) route's listeners: see `HaproxyRoute`. */
  frontend?: HaproxyRoute['frontend'];
  /** The first route's backend. */
  backend?: HaproxyRoute['backend'];
  timeouts?: {
    /** @defaultValue 5000 */
    connectMs?: number;
    /** Miner side inactivity. @defaultValue 900000 */
    clientMs?: number;
    /** Server side inactivity. @defaultValue 900000 */
    serverMs?: number;
    /** Established connection idle in both directions. @defaultValue 3600000 */
    tunnelMs?: number;
    /** @defaultValue 3000 */
    checkMs?: number;
  };
  /** The first route's stratum servers known at render time. @defaultValue [] */
  servers?: HaproxyServer[];
  /**
   * Further routes, each its own frontend and backend: a pool of several chains gives each
   * chain its own public port and its own servers. Names and ports must differ from the first
   * route's and from each other's.
   */
  routes?: HaproxyRoute[];
  /** The api's HTTP frontend and backend; none when omitted. */
  api?: HaproxyApiRoute;
  /** HAProxy's HTML stats page. */
  statsPage?: {
    /** @defaultValue '127.0.0.1' */
    bind?: string;
    port: number;
    /** @defaultValue '/' */
    uri?: string;
    /** @defaultValue 5 */
    refreshSec?: number;
  };
}

const NAME = /^[A-Za-z0-9_.:-]+$/;
const identifier = (what: string) =>
  z
    .string({ error: `must be a string (${what})` })
    .regex(NAME, `must be letters, digits, '_', '.', ':' or '-' (${what})`);
const bindAddress = z.string({ error: 'must be a string (an address)' }).regex(/^[^\s"'#\\]*$/, {
  error: 'must be an address without spaces, quotes or #',
});
const ms = (what: string) => positiveInt(`${what} in milliseconds`);

const checkSchema = z
  .object({
    intervalMs: ms('check interval').default(2000),
    rise: positiveInt('checks').default(2),
    fall: positiveInt('checks').default(3),
    agentIntervalMs: ms('agent interval').default(2000),
  })
  .strict();

const serverSchema = z
  .object({
    name: identifier('server name'),
    address: word('address'),
    port,
    agentPort: port.optional(),
    agentAddress: word('agent address').optional(),
  })
  .strict();

const DEFAULT_CHECK = { intervalMs: 2000, rise: 2, fall: 3, agentIntervalMs: 2000 };

const frontendFields = {
  bind: bindAddress.default(''),
  tls: z
    .object({ port, certificate: word('a PEM file path'), bind: bindAddress.optional() })
    .strict()
    .optional(),
};
const frontendSchema = z
  .object({
    name: identifier('frontend name').default('stratum_in'),
    port: port.default(3333),
    ...frontendFields,
  })
  .strict();
const backendFields = {
  retries: z.number().int().min(0, 'must be 0 or more').default(3),
  check: checkSchema.default(DEFAULT_CHECK),
};
const backendSchema = z
  .object({ name: identifier('backend name').default('stratum'), ...backendFields })
  .strict();
/** A further route names everything itself: defaults would clash with the first route's. */
const routeSchema = z
  .object({
    frontend: z.object({ name: identifier('frontend name'), port, ...frontendFields }).strict(),
    backend: z.object({ name: identifier('backend name'), ...backendFields }).strict(),
    servers: z.array(serverSchema).default([]),
  })
  .strict();

const inputSchema = z
  .object({
    statsSocket: word('a socket path'),
    maxconn: positiveInt('connections').optional(),
    log: oneLine('a log target').min(1, 'must not be empty (a log target)').optional(),
    frontend: frontendSchema.default({ name: 'stratum_in', bind: '', port: 3333 }),
    backend: backendSchema.default({ name: 'stratum', retries: 3, check: DEFAULT_CHECK }),
    timeouts: z
      .object({
        connectMs: ms('connect timeout').default(5000),
        clientMs: ms('client timeout').default(900_000),
        serverMs: ms('server timeout').default(900_000),
        tunnelMs: ms('tunnel timeout').default(3_600_000),
        checkMs: ms('check timeout').default(3000),
      })
      .strict()
      .default({ connectMs: 5000, clientMs: 900_000, serverMs: 900_000, tunnelMs: 3_600_000, checkMs: 3000 }),
    servers: z.array(serverSchema).default([]),
    routes: z.array(routeSchema).default([]),
    api: apiRouteSchema.optional(),
    statsPage: z
      .object({
        bind: bindAddress.default('127.0.0.1'),
        port,
        uri: z
          .string()
          .regex(/^\/[^\s"'#\\]*$/, 'must be a path starting with /')
          .default('/'),
        refreshSec: positiveInt('seconds').default(5),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((input, ctx) => {
    const routes: { at: (string | number)[]; route: z.output<typeof routeSchema> }[] = [
      { at: [], route: { frontend: input.frontend, backend: input.backend, servers: input.servers } },
      ...input.routes.map((route, i) => ({ at: ['routes', i], route })),
    ];
    const frontends = new Map<string, string>();
    const backends = new Map<string, string>();
    const ports = new Map<number, string>();
    const claim = <K>(seen: Map<K, string>, key: K, path: (string | number)[], what: string) => {
      const first = seen.get(key);
      if (first !== undefined)
        ctx.addIssue({ code: 'custom', path, message: `${what} also used by ${first}` });
      else seen.set(key, path.join('.'));
    };
    for (const { at, route } of routes) {
      const names = new Set<string>();
      route.servers.forEach((server, i) => {
        if (names.has(server.name))
          ctx.addIssue({
            code: 'custom',
            path: [...at, 'servers', i, 'name'],
            message: `duplicate server name ${server.name}`,
          });
        names.add(server.name);
      });
      const f = route.frontend;
      if (f.tls?.port === f.port)
        ctx.addIssue({
          code: 'custom',
          path: [...at, 'frontend', 'tls', 'port'],
          message: `must differ from frontend.port (${f.port})`,
        });
      if (input.statsPage && f.name === 'stats')
        ctx.addIssue({
          code: 'custom',
          path: [...at, 'frontend', 'name'],
          message: 'stats is the stats page’s name',
        });
      claim(frontends, f.name, [...at, 'frontend', 'name'], `frontend name ${f.name}`);
      claim(backends, route.backend.name, [...at, 'backend', 'name'], `backend name ${route.backend.name}`);
      claim(ports, f.port, [...at, 'frontend', 'port'], `port ${f.port}`);
      if (f.tls && f.tls.port !== f.port)
        claim(ports, f.tls.port, [...at, 'frontend', 'tls', 'port'], `port ${f.tls.port}`);
    }
    if (input.api) {
      const { frontend, backend } = input.api;
      claim(frontends, frontend.name, ['api', 'frontend', 'name'], `frontend name ${frontend.name}`);
      claim(backends, backend.name, ['api', 'backend', 'name'], `backend name ${backend.name}`);
      claim(ports, frontend.port, ['api', 'frontend', 'port'], `port ${frontend.port}`);
    }
    if (input.statsPage)
      claim(ports, input.statsPage.port, ['statsPage', 'port'], `port ${input.statsPage.port}`);
  });

/** HAProxy's time syntax, in the largest unit that keeps it whole (`90s`, `15m`, `1500ms`). */
export function haproxyTime(valueMs: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (valueMs % size === 0) return `${valueMs / size}${unit}`;
  }
  return `${valueMs}ms`;
}

/**
 * The keywords every stratum server gets: PROXY v2 with the unique-id TLV (the stratum server
 * takes the miner's address from it; its health checks send a LOCAL header), a connect health
 * check and the agent check's interval. Servers added at runtime do not inherit
 * `default-server`, so the follower passes the same words to `add server`.
 */
export function serverKeywords(check: ServerCheckOptions = {}): string {
  const c = parseInput('server check', checkSchema, check);
  return [
    'send-proxy-v2 proxy-v2-options unique-id',
    `check inter ${haproxyTime(c.intervalMs)} rise ${c.rise} fall ${c.fall}`,
    `agent-inter ${haproxyTime(c.agentIntervalMs)}`,
  ].join(' ');
}

/** The per-server words on top of `serverKeywords`: its agent check. */
export function serverAgentKeywords(server: Pick<HaproxyServer, 'agentPort' | 'agentAddress'>): string {
  if (server.agentPort === undefined) return '';
  const addr = server.agentAddress ? ` agent-addr ${server.agentAddress}` : '';
  return `agent-check agent-port ${server.agentPort}${addr}`;
}

/**
 * HAProxy's name for the server of service `id`: the id itself when HAProxy allows it, else the
 * id with every other character replaced by `_` plus a short hash, so two ids never collide.
 */
export function haproxyServerName(id: string): string {
  if (NAME.test(id) && id.length <= 64) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 8);
  return `${id.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 55)}-${hash}`;
}

/** Splits `host:port` (`[v6]:port` too); null when it is not one. */
export function splitHostPort(endpoint: string): { host: string; port: number } | null {
  const match = /^(?:\[([^\]]+)\]|([^:]+|.*:.*)):(\d{1,5})$/.exec(endpoint);
  if (!match) return null;
  const host = match[1] ?? match[2] ?? '';
  const portNumber = Number(match[3]);
  if (host === '' || portNumber < 1 || portNumber > 65535) return null;
  return { host, port: portNumber };
}

/**
 * The backend server for a registered stratum service; null when it registered no `stratum`
 * endpoint, or is draining (it takes no new miners, and a server HAProxy does not know gets none).
 */
export function haproxyServerFromService(service: ServiceInfo): HaproxyServer | null {
  return service.state === 'draining' ? null : backendServerOf(service);
}

/** The backend server of a registered stratum service, draining or not; null without a miner endpoint. */
export function backendServerOf(service: ServiceInfo): HaproxyServer | null {
  const miners = service.stratum ? splitHostPort(service.stratum) : null;
  if (!miners) return null;
  const agent = service.agent ? splitHostPort(service.agent) : null;
  return {
    name: haproxyServerName(service.id),
    address: miners.host,
    port: miners.port,
    ...(agent && { agentPort: agent.port }),
    ...(agent && agent.host !== miners.host && { agentAddress: agent.host }),
  };
}

let template: HandlebarsTemplateDelegate | undefined;

/** haproxy.cfg for the stratum frontends and backends; throws RenderInputError naming each bad field. */
export function renderHaproxy(input: HaproxyRenderInput): string {
  const v = parseInput('haproxy', inputSchema, input);
  template ??= compileTemplate(new URL('../../../haproxy/haproxy.cfg.hbs', import.meta.url));
  const t = v.timeouts;
  return template({
    statsSocket: v.statsSocket,
    maxconn: v.maxconn ?? null,
    logTarget: v.log ?? null,
    timeouts: {
      connect: haproxyTime(t.connectMs),
      client: haproxyTime(t.clientMs),
      server: haproxyTime(t.serverMs),
      tunnel: haproxyTime(t.tunnelMs),
      check: haproxyTime(t.checkMs),
    },
    routes: [{ frontend: v.frontend, backend: v.backend, servers: v.servers }, ...v.routes].map((r) => ({
      frontend: {
        name: r.frontend.name,
        bind: r.frontend.bind,
        port: r.frontend.port,
        tls: r.frontend.tls ? { ...r.frontend.tls, bind: r.frontend.tls.bind ?? r.frontend.bind } : null,
      },
      backend: {
        name: r.backend.name,
        retries: r.backend.retries,
        defaultServer: serverKeywords(r.backend.check),
      },
      servers: r.servers.map((s) => ({
        name: s.name,
        address: s.address,
        port: s.port,
        keywords: serverAgentKeywords(s),
      })),
    })),
    api: v.api
      ? {
          frontend: v.api.frontend,
          backend: {
            name: v.api.backend.name,
            retries: v.api.backend.retries,
            defaultServer: apiServerKeywords(v.api.backend.check, haproxyTime),
          },
          timeouts: {
            client: haproxyTime(v.api.timeouts.clientMs),
            server: haproxyTime(v.api.timeouts.serverMs),
            httpRequest: haproxyTime(v.api.timeouts.httpRequestMs),
            httpKeepAlive: haproxyTime(v.api.timeouts.httpKeepAliveMs),
            tunnel: haproxyTime(v.api.timeouts.tunnelMs),
          },
          servers: v.api.servers.map((s) => ({
            name: s.name,
            address: s.address,
            port: s.port,
            keywords: apiServerCheckKeywords(s),
          })),
        }
      : null,
    statsPage: v.statsPage ? { ...v.statsPage, name: 'stats', refresh: `${v.statsPage.refreshSec}s` } : null,
  });
}
