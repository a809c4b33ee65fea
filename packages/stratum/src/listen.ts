import type { Server } from 'node:net';

/**
 * Listens on the first free port of `[first, last]` (0 lets the system pick) and returns
 * it. Only "address in use" moves on to the next port; any other error is thrown.
 */
export async function listenOnRange(
  server: Server,
  host: string,
  [first, last]: readonly [number, number],
): Promise<number> {
  for (let port = first; port <= last; port++) {
    const bound = await new Promise<number | null>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        server.off('listening', onListening);
        if (error.code === 'EADDRINUSE' && port < last) resolve(null);
        else reject(error);
      };
      const onListening = () => {
        server.off('error', onError);
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ port, host, exclusive: true });
    });
    if (bound !== null) return bound;
  }
  throw new Error(`no free port from ${first} to ${last} on ${host}`);
}
