import type { Socket } from 'zeromq';

/** `tcp://host:port`, with IPv6 hosts in brackets. */
export function tcpEndpoint(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `tcp://[${host}]:${port}` : `tcp://${host}:${port}`;
}

/** Throws a clear error unless `range` is `[first, last]` with 1 ≤ first ≤ last ≤ 65535. */
export function checkPortRange(range: unknown): readonly [number, number] {
  const ok =
    Array.isArray(range) &&
    range.length === 2 &&
    range.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535) &&
    range[0] <= range[1];
  if (!ok) throw new RangeError('portRange must be [first, last] with 1 <= first <= last <= 65535');
  return range as [number, number];
}

/**
 * Binds `socket` on the first port of `range` that is free ("dynamic ports"): ports are tried in
 * order and a port in use (EADDRINUSE) moves on to the next one, so many services started at once
 * in one range end up on distinct ports without coordinating.
 */
export async function bindFirstFree(
  socket: Socket,
  host: string,
  range: readonly [number, number],
): Promise<number> {
  const [first, last] = range;
  for (let port = first; port <= last; port++) {
    try {
      await socket.bind(tcpEndpoint(host, port));
      return port;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error(`no free port in ${first}-${last} on ${host}: every port is in use`);
}
