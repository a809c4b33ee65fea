// The subscriber side of `api.ws_fanout_2k_p99_ms`: thousands of WebSocket clients in a process
// of their own (so their parsing does not run on the server's event loop), each timing every
// event it receives against the send time written into the event, on the same machine clock.
import WebSocket from 'ws';
import { serveParent } from './child-ipc.js';

export interface OpenSubscribersParams {
  url: string;
  count: number;
  /** A live-stream topic to subscribe to; null for the bare broadcast (no subscribe message). */
  topic: string | null;
}

export interface CollectParams {
  /** Events each subscriber must receive. */
  events: number;
  timeoutMs: number;
}

export interface CollectResult {
  latenciesMs: number[];
  /** Subscribers that did not receive every event before the timeout. */
  short: number;
}

/** Epoch ms with sub-millisecond precision, comparable across processes. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

const sockets: WebSocket[] = [];
let received: number[] = [];
let latencies: number[] = [];

function sentAtOf(message: { type?: string; event?: { data?: { sentAt?: number } }; sentAt?: number }):
  | number
  | null {
  if (message.type === 'event') return message.event?.data?.sentAt ?? null;
  return typeof message.sentAt === 'number' ? message.sentAt : null;
}

async function openOne(params: OpenSubscribersParams, index: number): Promise<void> {
  const ws = new WebSocket(params.url);
  sockets.push(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (data) => {
      const at = nowMs();
      const message = JSON.parse(String(data));
      if (message.type === 'subscribed') {
        resolve();
        return;
      }
      const sentAt = sentAtOf(message);
      if (sentAt === null) return;
      latencies.push(at - sentAt);
      received[index] = (received[index] ?? 0) + 1;
    });
    ws.once('open', () => {
      if (params.topic === null) resolve();
      else ws.send(JSON.stringify({ op: 'subscribe', topics: [params.topic] }));
    });
  });
}

serveParent(
  {
    async open(params: OpenSubscribersParams) {
      received = new Array(params.count).fill(0);
      latencies = [];
      for (let i = 0; i < params.count; i += 100)
        await Promise.all(
          Array.from({ length: Math.min(100, params.count - i) }, (_, j) => openOne(params, i + j)),
        );
      return { open: sockets.length };
    },
    async collect(params: CollectParams): Promise<CollectResult> {
      const deadline = Date.now() + params.timeoutMs;
      while (received.some((n) => n < params.events) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      const result = { latenciesMs: latencies, short: received.filter((n) => n < params.events).length };
      for (const ws of sockets.splice(0)) ws.terminate();
      return result;
    },
  },
  () => {
    for (const ws of sockets.splice(0)) ws.terminate();
  },
);
