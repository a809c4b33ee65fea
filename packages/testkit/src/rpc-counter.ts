import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RpcCounter {
  /** `http://127.0.0.1:<port>/`: give it to a client in place of the daemon's RPC URL. */
  url: string;
  /** Calls forwarded since the start or the last `reset()`, by JSON-RPC method. */
  counts(): Record<string, number>;
  /** All calls since the start or the last `reset()`. */
  total(): number;
  reset(): void;
  /** Closes the listener and every forwarded connection (pending long polls fail). */
  close(): Promise<void>;
}

/**
 * A counting HTTP proxy in front of a daemon's JSON-RPC port: every request is forwarded as is
 * (credentials included) and counted by the `method` of its body, so a test or bench sees how
 * often one client calls the daemon, which the daemon's own log cannot tell apart.
 */
export async function startRpcCounter(target: { host?: string; port: number }): Promise<RpcCounter> {
  let counts: Record<string, number> = {};
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      for (const method of methodsOf(body)) counts[method] = (counts[method] ?? 0) + 1;
      const upstream = http.request(
        {
          host: target.host ?? '127.0.0.1',
          port: target.port,
          path: req.url,
          method: req.method,
          headers: req.headers,
          agent,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      res.on('close', () => upstream.destroy());
      upstream.end(body);
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    counts: () => ({ ...counts }),
    total: () => Object.values(counts).reduce((a, b) => a + b, 0),
    reset() {
      counts = {};
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

function methodsOf(body: Buffer): string[] {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    const calls = Array.isArray(parsed) ? parsed : [parsed];
    return calls.map((c) => String((c as { method?: unknown })?.method ?? '?'));
  } catch {
    return ['?'];
  }
}
