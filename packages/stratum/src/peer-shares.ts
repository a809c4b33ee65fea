import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Share } from '@hashwire/protocol';

// During an upgrade the new stratum worker's shares are written by the old one, the spool's only
// writer until it retires (see `worker-sink.ts`). They travel on a Unix socket between the two
// workers, not over the master's IPC channels: Node queues every IPC message behind a socket
// handle awaiting its acknowledgement, so a share answer would wait for the sessions moving on
// the same channels. One JSON object a line each way: `{"n":1,"share":{…}}` from the standby,
// `{"n":1}` (written to the spool) or `{"n":1,"error":"…"}` from the owner.

/** Where the spool's owner takes a standby's shares: in the spool directory, next to control.sock. */
export function peerSharesPath(spoolDir: string): string {
  return join(spoolDir, 'shares.sock');
}

interface AppendRequest {
  n: number;
  share: Share;
}

interface AppendAnswer {
  n: number;
  error?: string;
}

export interface PeerShareServer {
  /** Drops the standby's connection and stops listening (the socket file is removed). */
  close(): Promise<void>;
}

/**
 * The owner's side: listens on `path` (mode 0600: only the service's user) and writes each
 * share it receives with `append`, answering once it resolved.
 */
export async function servePeerShares(
  path: string,
  append: (share: Share) => Promise<void>,
): Promise<PeerShareServer> {
  const peers = new Set<Socket>();
  const server: Server = createServer((socket) => {
    peers.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('close', () => peers.delete(socket));
    const answer = (reply: AppendAnswer) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
    };
    createInterface({ input: socket }).on('line', (line) => {
      let request: AppendRequest;
      try {
        request = JSON.parse(line) as AppendRequest;
      } catch {
        socket.destroy();
        return;
      }
      append(request.share).then(
        () => answer({ n: request.n }),
        (error: Error) => answer({ n: request.n, error: error.message }),
      );
    });
  });
  // A socket file left by a worker that was killed: this process owns the spool now.
  if (existsSync(path)) unlinkSync(path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of peers) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface PeerShareClient {
  /** Resolves once the owner wrote the share to its spool; rejects with its error or a lost connection. */
  append(share: Share): Promise<void>;
  close(): void;
}

/**
 * The standby's side: connects to the owner at `path` on the first share, and again after a
 * lost connection (the shares in flight on it are refused: their miners never hear `true`).
 */
export function connectPeerShares(path: string): PeerShareClient {
  type Waiting = Map<number, { resolve: () => void; reject: (error: Error) => void }>;
  let current: { socket: Socket; waiting: Waiting } | null = null;
  let seq = 0;
  const open = () => {
    const socket = createConnection(path);
    const waiting: Waiting = new Map();
    const link = { socket, waiting };
    socket.setNoDelay(true);
    createInterface({ input: socket }).on('line', (line) => {
      const reply = JSON.parse(line) as AppendAnswer;
      const entry = waiting.get(reply.n);
      if (!entry) return;
      waiting.delete(reply.n);
      if (reply.error === undefined) entry.resolve();
      else entry.reject(new Error(reply.error));
    });
    const lost = (error?: Error) => {
      if (current === link) current = null;
      const reason = new Error(
        `the spool's owner is not reachable at ${path}${error ? `: ${error.message}` : ''}`,
      );
      for (const entry of waiting.values()) entry.reject(reason);
      waiting.clear();
    };
    socket.on('error', lost);
    socket.on('close', () => lost());
    return link;
  };
  return {
    append(share) {
      return new Promise<void>((resolve, reject) => {
        current ??= open();
        const n = ++seq;
        current.waiting.set(n, { resolve, reject });
        current.socket.write(`${JSON.stringify({ n, share } satisfies AppendRequest)}\n`);
      });
    },
    close() {
      current?.socket.end();
      current = null;
    },
  };
}
