import { type Server, type Socket, createServer } from 'node:net';
import { listenOnRange } from './listen.js';
import type { StratumStats } from './server.js';

/**
 * What a stratum server tells HAProxy's agent check: `up` takes miners, `drain` keeps its
 * connections but gets no new ones (set once draining; a server never comes back from it, so the
 * agent never says `ready`, which would also undo a drain set through the runtime API), `down`
 * takes none (suspended: no coin daemon, or no job yet; HAProxy keeps established connections).
 */
export type AgentWord = 'up' | 'drain' | 'down';

/**
 * The agent's answer for a server: `up` only when it is running and has a job to give (a
 * server still waiting for its first job would leave miners idle), `drain` while draining.
 */
export function agentWordFor(stats: Pick<StratumStats, 'state' | 'currentJobId'>): AgentWord {
  if (stats.state === 'draining') return 'drain';
  return stats.state === 'running' && stats.currentJobId !== null ? 'up' : 'down';
}

export interface AgentCheckOptions {
  /** Asked on every check. */
  status: () => AgentWord;
  /** @defaultValue '0.0.0.0' */
  host?: string;
  /** First free port of the range; [0, 0] lets the system pick. @defaultValue [0, 0] */
  ports?: readonly [number, number];
}

export interface AgentCheck {
  readonly host: string;
  readonly port: number;
  /** Checks answered so far. */
  readonly answered: number;
  close(): Promise<void>;
}

/**
 * HAProxy's agent-check protocol: on each connection write one line (`up`, `drain`, `down`)
 * and close. HAProxy resets its side once it has read the line, so socket errors are expected
 * and ignored.
 */
export async function startAgentCheck(options: AgentCheckOptions): Promise<AgentCheck> {
  const host = options.host ?? '0.0.0.0';
  const sockets = new Set<Socket>();
  let answered = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    answered++;
    socket.end(`${options.status()}\n`);
  });
  server.on('error', () => {});
  const port = await listenOnRange(server, host, options.ports ?? [0, 0]);
  return {
    host,
    port,
    get answered() {
      return answered;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * `host:port` others reach a listener on `listenHost` at: `advertiseHost` when given, the listen
 * address when it is one, else 127.0.0.1 (a wildcard is no destination). IPv6 in brackets.
 */
export function advertisedEndpoint(listenHost: string, port: number, advertiseHost?: string): string {
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::' || listenHost === '';
  const host = advertiseHost ?? (wildcard ? '127.0.0.1' : listenHost);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
