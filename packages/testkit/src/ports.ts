import net from 'node:net';

// Ports this process handed out recently: two quick calls never return the same port even
// though the first one is not bound yet.
const handedOut = new Set<number>();
const REMEMBERED_PORTS = 512;

/** A TCP port free on 127.0.0.1 right now (the kernel's pick). Bind it soon: another process may take it. */
export async function getFreePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, host, () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      if (handedOut.size > REMEMBERED_PORTS) {
        handedOut.delete(handedOut.values().next().value as number);
      }
      return port;
    }
  }
}
