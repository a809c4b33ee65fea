import { createRpcClient, createRpcServer, curveKeyPair } from '@hashwire/rpc';
import { afterEach, describe, expect, it } from 'vitest';
import { Router } from 'zeromq';
import { Closer, randomRange } from './helpers.js';

const closer = new Closer();
afterEach(() => closer.closeAll());

interface Who {
  'svc.who': { req: null; rep: { port: number } };
}

describe('binding the first free port of a range', () => {
  it('gives 20 servers started at once 20 distinct ports of the range, each serving its own', async () => {
    const range = randomRange(40);
    const servers = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const holder: { port: number } = { port: 0 };
        const server = closer.add(
          await createRpcServer<Who>({
            portRange: range,
            handlers: { 'svc.who': () => ({ port: holder.port }) },
          }),
        );
        holder.port = server.port;
        return server;
      }),
    );
    const ports = servers.map((s) => s.port);
    expect(new Set(ports).size).toBe(20);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(range[0]);
      expect(port).toBeLessThanOrEqual(range[1]);
    }
    for (const server of servers) {
      const client = closer.add(createRpcClient<Who>(server.endpoint));
      await expect(client.request('svc.who', null)).resolves.toEqual({ port: server.port });
    }
  });

  /** A socket holding a port the OS picked; returns the port. */
  async function squat(): Promise<number> {
    const squatter = closer.add(new Router({ linger: 0 }));
    await squatter.bind('tcp://127.0.0.1:*');
    return Number((squatter.lastEndpoint as string).split(':').pop());
  }

  it('skips a port another socket holds', async () => {
    const held = await squat();
    const server = closer.add(await createRpcServer({ portRange: [held, held + 10], handlers: {} }));
    expect(server.port).toBeGreaterThan(held);
  });

  it('fails with a clear error when every port of the range is taken', async () => {
    const held = await squat();
    await expect(createRpcServer({ portRange: [held, held], handlers: {} })).rejects.toThrow(
      `no free port in ${held}-${held} on 127.0.0.1`,
    );
  });

  it('advertises advertiseHost when bound to a wildcard', async () => {
    // Off loopback, so CURVE with an allow list is required.
    const keys = curveKeyPair();
    const server = closer.add(
      await createRpcServer({
        portRange: randomRange(),
        host: '0.0.0.0',
        advertiseHost: '127.0.0.1',
        curve: {
          serverPublicKey: keys.publicKey,
          serverSecretKey: keys.secretKey,
          allowedClientKeys: [curveKeyPair().publicKey],
        },
        handlers: {},
      }),
    );
    expect(server.endpoint).toBe(`tcp://127.0.0.1:${server.port}`);
  });
});
