import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The dashboard: the static page and assets `@hashwire/dashboard` built, held in memory (and
 * gzipped once) and served at `/`, `/account/<address>`, `/operator` and `/assets/<file>`.
 */

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Same origin only: the page's script, style, API and stream; uPlot sets inline styles. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
}

/** The built dashboard's folder, or null when the package is not built. */
export function defaultDashboardDir(): string | null {
  try {
    const pkg = createRequire(import.meta.url).resolve('@hashwire/dashboard/package.json');
    const dir = join(dirname(pkg), 'dist');
    return existsSync(join(dir, 'index.html')) ? dir : null;
  } catch {
    return null;
  }
}

function load(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name, { type, body, gzip: gzipSync(body, { level: 9 }) });
  }
  return assets;
}

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset, cache: string): FastifyReply {
  const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
  void reply
    .type(asset.type)
    .header('cache-control', cache)
    .header('vary', 'accept-encoding')
    .header('x-content-type-options', 'nosniff');
  if (gzip) void reply.header('content-encoding', 'gzip');
  return reply.send(gzip ? asset.gzip : asset.body);
}

/**
 * Registers the dashboard's routes. `dir` is the built folder; without one the pages answer 503
 * saying how to build it (the API itself is not affected).
 */
export function registerDashboardRoutes(app: FastifyInstance, dir: string | null): void {
  const assets = dir ? load(dir) : new Map<string, Asset>();
  const page = assets.get('index.html');
  const servePage = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!page)
      return reply
        .status(503)
        .type('text/plain; charset=utf-8')
        .send('The dashboard is not built: run `pnpm build` (it bundles packages/dashboard).\n');
    void reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
    return send(request, reply, page, 'no-cache');
  };
  app.get('/', servePage);
  app.get('/operator', servePage);
  app.get('/account', servePage);
  app.get('/account/*', servePage);
  app.get<{ Params: { file: string } }>('/assets/:file', async (request, reply) => {
    const asset = request.params.file === 'index.html' ? undefined : assets.get(request.params.file);
    if (!asset) return reply.callNotFound();
    // File names carry their content hash: a new build is a new name.
    return send(request, reply, asset, 'public, max-age=31536000, immutable');
  });
}
