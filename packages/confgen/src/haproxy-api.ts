import type { ServiceInfo } from '@hashwire/registry';
import { z } from 'zod';
import { parseInput, port, positiveInt, word } from './input.js';

/*
 * The api's part of haproxy.cfg: one HTTP frontend and a backend of api instances, health-checked
 * on each instance's /healthz (its status server: Redis reachable, not draining). Instances come
 * and go at runtime like stratum servers do; the follower adds them with `apiServerKeywords`.
 */

/** Health checks of every api instance. */
export interface ApiCheckOptions {
  /** @defaultValue 2000 */
  intervalMs?: number;
  /** @defaultValue 2 */
  rise?: number;
  /** @defaultValue 3 */
  fall?: number;
}

/** One api instance in the backend. */
export interface HaproxyApiServer {
  /** HAProxy server name: `haproxyServerName(serviceId)`. */
  name: string;
  /** Address and port of the API. */
  address: string;
  port: number;
  /** Port of the instance's status server, where `GET /healthz` is checked. */
  checkPort?: number;
  /** Address of the status server when it is not `address`. */
  checkAddress?: string;
}

/** The HTTP frontend and backend of the api. */
export interface HaproxyApiRoute {
  frontend?: {
    /** @defaultValue 'api_in' */
    name?: string;
    /** Address to listen on; empty for every IPv4 address. @defaultValue '127.0.0.1' */
    bind?: string;
    /** @defaultValue 8080 */
    port?: number;
  };
  backend?: {
    /** @defaultValue 'api' */
    name?: string;
    /** Connection attempts before giving up; each goes to another instance. @defaultValue 3 */
    retries?: number;
    check?: ApiCheckOptions;
  };
  timeouts?: {
    /** Client inactivity within a request or response. @defaultValue 60000 */
    clientMs?: number;
    /** Server inactivity within a request or response. @defaultValue 60000 */
    serverMs?: number;
    /** Time to receive a whole request head (slow clients). @defaultValue 10000 */
    httpRequestMs?: number;
    /** An idle keep-alive connection between requests. @defaultValue 10000 */
    httpKeepAliveMs?: number;
    /** An upgraded connection (WebSocket) idle in both directions. @defaultValue 3600000 */
    tunnelMs?: number;
  };
  /** Instances known at render time (the follower adds the rest). @defaultValue [] */
  servers?: HaproxyApiServer[];
}

const NAME = /^[A-Za-z0-9_.:-]+$/;
const identifier = (what: string) =>
  z
    .string({ error: `must be a string (${what})` })
    .regex(NAME, `must be letters, digits, '_', '.', ':' or '-' (${what})`);
const ms = (what: string) => positiveInt(`${what} in milliseconds`);

const API_CHECK = { intervalMs: 2000, rise: 2, fall: 3 };
export const apiCheckSchema = z
  .object({
    intervalMs: ms('check interval').default(2000),
    rise: positiveInt('checks').default(2),
    fall: positiveInt('checks').default(3),
  })
  .strict();

const API_TIMEOUTS = {
  clientMs: 60_000,
  serverMs: 60_000,
  httpRequestMs: 10_000,
  httpKeepAliveMs: 10_000,
  tunnelMs: 3_600_000,
};
export const apiRouteSchema = z
  .object({
    frontend: z
      .object({
        name: identifier('frontend name').default('api_in'),
        bind: z
          .string({ error: 'must be a string (an address)' })
          .regex(/^[^\s"'#\\]*$/, { error: 'must be an address without spaces, quotes or #' })
          .default('127.0.0.1'),
        port: port.default(8080),
      })
      .strict()
      .default({ name: 'api_in', bind: '127.0.0.1', port: 8080 }),
    backend: z
      .object({
        name: identifier('backend name').default('api'),
        retries: z.number().int().min(0, 'must be 0 or more').default(3),
        check: apiCheckSchema.default(API_CHECK),
      })
      .strict()
      .default({ name: 'api', retries: 3, check: API_CHECK }),
    timeouts: z
      .object({
        clientMs: ms('client timeout').default(API_TIMEOUTS.clientMs),
        serverMs: ms('server timeout').default(API_TIMEOUTS.serverMs),
        httpRequestMs: ms('http-request timeout').default(API_TIMEOUTS.httpRequestMs),
        httpKeepAliveMs: ms('http-keep-alive timeout').default(API_TIMEOUTS.httpKeepAliveMs),
        tunnelMs: ms('tunnel timeout').default(API_TIMEOUTS.tunnelMs),
      })
      .strict()
      .default(API_TIMEOUTS),
    servers: z
      .array(
        z
          .object({
            name: identifier('server name'),
            address: word('address'),
            port,
            checkPort: port.optional(),
            checkAddress: word('check address').optional(),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

/** `check` with its interval, rise and fall: what every api instance gets, rendered or added at runtime. */
export function apiServerKeywords(check: ApiCheckOptions, time: (ms: number) => string): string {
  const c = parseInput('api server check', apiCheckSchema, check);
  return `check inter ${time(c.intervalMs)} rise ${c.rise} fall ${c.fall}`;
}

/** The per-instance words: where its /healthz is when that is not the API's own address and port. */
export function apiServerCheckKeywords(server: Pick<HaproxyApiServer, 'checkPort' | 'checkAddress'>): string {
  return [
    ...(server.checkPort !== undefined ? [`port ${server.checkPort}`] : []),
    ...(server.checkAddress ? [`addr ${server.checkAddress}`] : []),
  ].join(' ');
}

/** `http://host:port` as host and port; null when it is not one. */
function httpHostPort(url: string | undefined): { host: string; port: number } | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    const portNumber = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    return host && portNumber > 0 ? { host, port: portNumber } : null;
  } catch {
    return null;
  }
}

/**
 * The backend server of a registered api instance (its `api` URL), checked on its status server
 * (its `http` URL); null without an API URL. `name` is the HAProxy name of the service id.
 */
export function apiServerOf(service: ServiceInfo, name: string): HaproxyApiServer | null {
  const api = httpHostPort(service.api);
  if (!api) return null;
  const health = httpHostPort(service.http);
  return {
    name,
    address: api.host,
    port: api.port,
    ...(health && { checkPort: health.port }),
    ...(health && health.host !== api.host && { checkAddress: health.host }),
  };
}
