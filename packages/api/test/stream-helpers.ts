import type { PoolEvent, StreamClient } from '@hashwire/client';
import { type KeyBuilder, POOL_STREAM } from '@hashwire/protocol';
import { type RedisClient, appendEvent } from '@hashwire/registry';
import WebSocket from 'ws';

/**
 * Appends the `i`th event of a test's flow to `stream`: `service.stratum.up` (id `st-<i>`) to the
 * pool's stream, `block.accepted` (height `i`) to a chain's. Returns its seq.
 */
export function appendNumbered(
  redis: RedisClient,
  keys: KeyBuilder,
  stream: string,
  i: number,
): Promise<string> {
  return stream === POOL_STREAM
    ? appendEvent(redis, keys, 'service.stratum.up', { kind: 'stratum', id: `st-${i}` })
    : appendEvent(
        redis,
        keys,
        'block.accepted',
        { chain: stream, hash: 'ab', height: i, state: 'accepted' },
        stream,
      );
}

/** ws's WebSocket, remembering every socket opened so a test can cut them as a network would. */
export class CuttableWebSocket extends WebSocket {
  static opened: CuttableWebSocket[] = [];
  constructor(url: string) {
    super(url);
    CuttableWebSocket.opened.push(this);
  }
  /** Destroys the TCP connection of every open socket at once: no close handshake. */
  static cutAll(): number {
    let cut = 0;
    for (const socket of CuttableWebSocket.opened) {
      if (socket.readyState === WebSocket.OPEN) {
        socket.terminate();
        cut++;
      }
    }
    CuttableWebSocket.opened = CuttableWebSocket.opened.filter((s) => s.readyState !== WebSocket.CLOSED);
    return cut;
  }
}

/** Polls `condition` until true; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  // performance.now: a test may hold Date.now (the api's clock) still.
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Every event a stream client gives, and every state it went through. */
export function record(stream: StreamClient) {
  const events: PoolEvent[] = [];
  const states: string[] = [];
  const errors: { code: string; message: string }[] = [];
  stream.on('event', (e) => events.push(e));
  stream.on('state', (s) => states.push(s));
  stream.on('error', (e) => errors.push({ code: e.code, message: e.message }));
  return { events, states, errors };
}
