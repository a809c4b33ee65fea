import type { FastifyInstance } from 'fastify';

/** A port, or `[first, last]`: the first free port of the range is bound (0 in a range: any). */
export type ApiPort = number | readonly [number, number];

/** Checks `port` and says which field is wrong; `[first, last]` with first ≤ last. */
export function checkApiPort(port: ApiPort): void {
  const ok = (p: unknown) => Number.isInteger(p) && (p as number) >= 0 && (p as number) <= 65535;
  if (typeof port === 'number') {
    if (!ok(port)) throw new TypeError(`api: port must be an integer 0–65535, got ${port}`);
    return;
  }
  if (!Array.isArray(port) || port.length !== 2 || !ok(port[0]) || !ok(port[1]) || port[0] > port[1])
    throw new TypeError(
      `api: port must be an integer 0–65535 or [first, last] with first ≤ last, got ${JSON.stringify(port)}`,
    );
}

/**
 * Listens on `port`, or on the first free port of a range, as the other services bind theirs:
 * several instances on one host take consecutive ports without being told which.
 */
export async function listenFirstFree(app: FastifyInstance, host: string, port: ApiPort): Promise<number> {
  const [first, last] = typeof port === 'number' ? [port, port] : port;
  for (let candidate = first; candidate <= last; candidate++) {
    try {
      await app.listen({ host, port: candidate });
      const address = app.server.address();
      return typeof address === 'object' && address ? address.port : candidate;
    } catch (error) {
      const taken = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (!taken || first === last) throw error;
    }
  }
  throw new Error(`api: no free port in ${first}-${last} on ${host}`);
}
