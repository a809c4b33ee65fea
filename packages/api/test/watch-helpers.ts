import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { waitFor } from '@hashwire/testkit';

export const ADMIN_TOKEN = 'watch-test-admin-token-0123456789';
export const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

/** One request a webhook got. */
export interface Hook {
  path: string;
  headers: IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: the tests check the JSON they read
  body: any;
  /** The status it was answered with (null while held). */
  status: number | null;
  response?: ServerResponse;
}

/**
 * A real HTTP server standing in for a webhook: it records every request and answers with what
 * `answer` says (a status, or 'hold' to keep the request open until `release`).
 */
export async function startWebhook(port = 0) {
  const hooks: Hook[] = [];
  const held: ServerResponse[] = [];
  let answer: (hook: Hook) => number | 'hold' = () => 200;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      text += chunk;
    });
    req.on('end', () => {
      const hook: Hook = { path: req.url ?? '', headers: req.headers, body: JSON.parse(text), status: null };
      hooks.push(hook);
      const status = answer(hook);
      if (status === 'hold') {
        hook.response = res;
        held.push(res);
        return;
      }
      hook.status = status;
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    hooks,
    /** Requests answered 2xx, in arrival order. */
    delivered: () => hooks.filter((h) => h.status !== null && h.status >= 200 && h.status < 300),
    setAnswer(fn: (hook: Hook) => number | 'hold') {
      answer = fn;
    },
    /** Answers the requests held so far with `status`. */
    async answerHeld(status: number) {
      for (const res of held.splice(0)) {
        const hook = hooks.find((h) => h.status === null && h.response === res);
        if (hook) hook.status = status;
        res.statusCode = status;
        res.end();
      }
    },
    close: async () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Events of the pool stream of type `type`, oldest first. */
export async function poolEvents(redis: RedisClient, keys: KeyBuilder, type: string) {
  const entries = (await redis.xrange(keys.poolEvents(), '-', '+')) as [string, string[]][];
  return entries
    .map(([id, f]) => ({ id, type: f[1], data: JSON.parse(f[5] as string) }))
    .filter((e) => e.type === type);
}

export async function waitForCount<T>(
  read: () => T[] | Promise<T[]>,
  count: number,
  what: string,
): Promise<T[]> {
  return waitFor(
    async () => {
      const items = await read();
      return items.length >= count ? items : undefined;
    },
    { what, timeoutMs: 30_000 },
  );
}
