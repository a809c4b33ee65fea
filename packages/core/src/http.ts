import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';

/** What a service reports about itself; `ok: false` makes `/healthz` answer 503. */
export interface HealthReport {
  ok: boolean;
  /** Why not, for operators: e.g. `no daemon answered for 12 s`, `redis unreachable`. */
  reasons?: string[];
}

export interface StatusServerOptions {
  /** Ports tried in order; the first free one is used. Use [0, 0] for any port. @defaultValue [29000, 29999] */
  portRange?: readonly [number, number];
  /**
   * The address it binds. Loopback by default: `/healthz`, `/stats` and `/metrics` are read-only
   * and `POST /drain` needs the admin token, so binding another address (config `http.host`)
   * exposes the read-only pages only. @defaultValue '127.0.0.1'
   */
  host?: string;
  /**
   * The host written into `url` (what the registry publishes) when `host` is a wildcard
   * (`0.0.0.0`, `::`). @defaultValue '127.0.0.1'
   */
  advertiseHost?: string;
  metrics?: Metrics;
  health: () => HealthReport | Promise<HealthReport>;
  stats: () => unknown;
  /**
   * `POST /drain` starts the service's own graceful stop (what SIGTERM does for its kind) and
   * answers 202 `{ draining: true }` at once; the caller follows the registry to see it leave.
   * Without it `/drain` is 404 (and any other POST 405).
   */
  onDrain?: () => void | Promise<void>;
  /**
   * The token admin actions (`POST /drain`) must carry as `Authorization: Bearer <token>`.
   * Without one they are refused (403): closed by default, whatever the host.
   */
  adminToken?: string;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Why an admin request is refused, or null. A browser on this host must not be able to drain a
 * service from a web page: a request a browser marks as coming from another site (`Origin` not
 * this server, `Sec-Fetch-Site` other than same-origin or none) is refused before the token is
 * even looked at, and the token itself sits in a header no HTML form can set.
 */
function adminRefusal(
  req: IncomingMessage,
  tokenDigest: Buffer | null,
): { status: number; error: string } | null {
  const fetchSite = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  if (
    (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') ||
    (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`)
  ) {
    return { status: 403, error: 'cross-site request refused' };
  }
  if (!tokenDigest) {
    return {
      status: 403,
      error: 'admin actions are off: this service has no admin token (http.adminTokenFile)',
    };
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!match || !timingSafeEqual(digest(match[1] as string), tokenDigest)) {
    return {
      status: 401,
      error: 'admin token required: Authorization: Bearer <token> (the token is in http.adminTokenFile)',
    };
  }
  return null;
}

export interface StatusServer {
  readonly port: number;
  /** `http://host:port`, to register in discovery. */
  readonly url: string;
  close(): Promise<void>;
}

function listen(server: Server, host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(false);
      else reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(true);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/** `0.0.0.0` or `::`: every address of the host. */
export function isWildcardHost(host: string): boolean {
  const h = host.trim().replace(/^\[(.*)\]$/, '$1');
  return h === '0.0.0.0' || h === '::';
}

/** `http://host:port`, with an IPv6 address in brackets. */
function httpUrl(host: string, port: number): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return `http://${bare.includes(':') ? `[${bare}]` : bare}:${port}`;
}

/**
 * Every service's HTTP face, as an NSQ daemon has: `GET /healthz` (200 or 503 with the
 * reasons), `GET /stats` (JSON counters, peers, queues), `GET /metrics` (Prometheus text) and,
 * when the service gives `onDrain`, `POST /drain`, which needs the admin token and refuses
 * cross-site requests.
 * Binds the first free port of its range, like the RPC socket.
 */
export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const host = (options.host ?? '127.0.0.1').replace(/^\[(.*)\]$/, '$1');
  const [first, last] = options.portRange ?? [29000, 29999];
  const tokenDigest = options.adminToken ? digest(options.adminToken) : null;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
      res.end(body);
    };
    if (path === '/drain' && options.onDrain) {
      if (req.method !== 'POST') {
        reply(
          405,
          'application/json',
          JSON.stringify({ error: `method ${req.method} not allowed; use POST` }),
        );
        return;
      }
      const refused = adminRefusal(req, tokenDigest);
      if (refused) {
        reply(
          refused.status,
          'application/json',
          JSON.stringify({ error: refused.error }),
          refused.status === 401 ? { 'www-authenticate': 'Bearer' } : {},
        );
        return;
      }
      try {
        // Started, not awaited: the drain takes as long as the service needs, the reply does not.
        // A failure later is the service's to log; the process exits either way.
        void Promise.resolve(options.onDrain()).catch(() => {});
      } catch (error) {
        const detail = (error as Error).message;
        reply(500, 'application/json', JSON.stringify({ error: 'drain failed', detail }));
        return;
      }
      reply(202, 'application/json', JSON.stringify({ draining: true }));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(405, 'application/json', JSON.stringify({ error: `method ${req.method} not allowed; use GET` }));
      return;
    }
    const handle = async () => {
      if (path === '/healthz' || path === '/ping') {
        const health = await options.health();
        reply(health.ok ? 200 : 503, 'application/json', JSON.stringify(health));
      } else if (path === '/stats') {
        reply(200, 'application/json', JSON.stringify(await options.stats()));
      } else if (path === '/metrics' && options.metrics) {
        reply(200, options.metrics.contentType, await options.metrics.text());
      } else {
        reply(
          404,
          'application/json',
          JSON.stringify({ error: `no ${path}; try /healthz, /stats, /metrics` }),
        );
      }
    };
    handle().catch((error: Error) => {
      // The service's own failure to report is itself unhealthy; no stack to the client.
      reply(500, 'application/json', JSON.stringify({ error: 'internal error', detail: error.message }));
    });
  });
  server.keepAliveTimeout = 5_000;
  for (let port = first; port <= last; port++) {
    if (await listen(server, host, port)) {
      const bound = (server.address() as AddressInfo).port;
      return {
        port: bound,
        url: httpUrl(isWildcardHost(host) ? (options.advertiseHost ?? '127.0.0.1') : host, bound),
        close: () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      };
    }
  }
  throw new Error(`no free HTTP port in ${first}–${last} on ${host}`);
}
