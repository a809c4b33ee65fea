import { RpcErrorCode, isLoopbackHost } from '@hashwire/protocol';
import {
  checkServiceCurve,
  clientCurveFor,
  createRpcClient,
  createRpcServer,
  curveKeyPair,
  curvePublicKey,
  z85Decode,
  z85Encode,
} from '@hashwire/rpc';
import { afterEach, describe, expect, it } from 'vitest';
import { Closer, randomRange } from './helpers.js';

interface Secret {
  'vault.read': { req: null; rep: { secret: string } };
}

const closer = new Closer();
afterEach(() => closer.closeAll());

async function startServer(allowedClientKeys?: string[]) {
  const keys = curveKeyPair();
  const server = closer.add(
    await createRpcServer<Secret>({
      portRange: randomRange(),
      curve: {
        serverPublicKey: keys.publicKey,
        serverSecretKey: keys.secretKey,
        ...(allowedClientKeys ? { allowedClientKeys } : {}),
      },
      handlers: { 'vault.read': () => ({ secret: 'hunter2' }) },
    }),
  );
  return { server, serverPublicKey: keys.publicKey };
}

function clientWith(endpoint: string, serverPublicKey: string, keys = curveKeyPair()) {
  return closer.add(
    createRpcClient<Secret>(endpoint, {
      timeoutMs: 300,
      curve: { serverPublicKey, publicKey: keys.publicKey, secretKey: keys.secretKey },
    }),
  );
}

describe('CURVE', () => {
  it('z85 round-trips the keys zeromq makes', () => {
    const { publicKey } = curveKeyPair();
    const bytes = z85Decode(publicKey);
    expect(bytes).toHaveLength(32);
    expect(z85Encode(bytes as Buffer)).toBe(publicKey);
    // The test vector of ZeroMQ RFC 32.
    expect(z85Encode(Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]))).toBe('HelloWorld');
    expect(z85Decode('Hello Worl')).toBeNull();
  });

  it('lets in only the client keys it allows', async () => {
    const allowed = curveKeyPair();
    const { server, serverPublicKey } = await startServer([allowed.publicKey]);
    const good = clientWith(server.endpoint, serverPublicKey, allowed);
    await expect(good.request('vault.read', null)).resolves.toEqual({ secret: 'hunter2' });

    const stranger = clientWith(server.endpoint, serverPublicKey);
    await expect(stranger.request('vault.read', null)).rejects.toMatchObject({ code: RpcErrorCode.Timeout });
    expect(server.stats().authDenied).toBeGreaterThanOrEqual(1);
    expect(server.stats().requests).toBe(1);

    // Still serving the allowed client afterwards.
    await expect(good.request('vault.read', null)).resolves.toEqual({ secret: 'hunter2' });
  });

  it('lets nothing through without the right server key or without CURVE', async () => {
    const { server } = await startServer();
    const wrongServerKey = clientWith(server.endpoint, curveKeyPair().publicKey);
    const plain = closer.add(createRpcClient<Secret>(server.endpoint, { timeoutMs: 300 }));
    const results = await Promise.allSettled([
      wrongServerKey.request('vault.read', null),
      plain.request('vault.read', null),
    ]);
    for (const result of results) {
      expect(result).toMatchObject({ status: 'rejected', reason: { code: RpcErrorCode.Timeout } });
    }
    expect(server.stats().requests).toBe(0);
  });

  it('without allowedClientKeys, encrypts for any client that knows the server key', async () => {
    const { server, serverPublicKey } = await startServer();
    await expect(clientWith(server.endpoint, serverPublicKey).request('vault.read', null)).resolves.toEqual({
      secret: 'hunter2',
    });
  });

  it('two servers with different allow lists in one process keep their own policy', async () => {
    const a = curveKeyPair();
    const b = curveKeyPair();
    const one = await startServer([a.publicKey]);
    const two = await startServer([b.publicKey]);
    await expect(
      clientWith(one.server.endpoint, one.serverPublicKey, a).request('vault.read', null),
    ).resolves.toEqual({
      secret: 'hunter2',
    });
    await expect(
      clientWith(two.server.endpoint, two.serverPublicKey, b).request('vault.read', null),
    ).resolves.toEqual({
      secret: 'hunter2',
    });
    await expect(
      clientWith(two.server.endpoint, two.serverPublicKey, a).request('vault.read', null),
    ).rejects.toMatchObject({ code: RpcErrorCode.Timeout });
  });

  it('refuses a malformed key with a message naming the field', async () => {
    await expect(
      createRpcServer({ handlers: {}, curve: { serverPublicKey: 'short', serverSecretKey: 'short' } }),
    ).rejects.toThrow(/curve.serverSecretKey must be a 40-character Z85 CURVE key/);
  });

  it('refuses to bind off loopback without CURVE and a client allow list, naming the setting', async () => {
    await expect(
      createRpcServer({ host: '127.0.0.2', portRange: randomRange(), handlers: {} }),
    ).rejects.toThrow(/curve is required: host 127.0.0.2 is not loopback/);
    const keys = curveKeyPair();
    await expect(
      createRpcServer({
        host: '127.0.0.2',
        portRange: randomRange(),
        handlers: {},
        curve: { serverPublicKey: keys.publicKey, serverSecretKey: keys.secretKey },
      }),
    ).rejects.toThrow(/curve.allowedClientKeys must list/);
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('::1')).toBe(true);
    expect(isLoopbackHost('[::1]')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    for (const host of ['127.0.0.2', '0.0.0.0', '::', '10.0.0.5', ''])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it('derives the public key of a secret key and catches a mixed-up pair', () => {
    const a = curveKeyPair();
    const b = curveKeyPair();
    expect(curvePublicKey(a.secretKey)).toBe(a.publicKey);
    expect(checkServiceCurve('curve', { ...a, allowedClientKeys: [b.publicKey] })).toEqual({
      ...a,
      allowedClientKeys: [b.publicKey],
    });
    expect(() => checkServiceCurve('curve', { publicKey: b.publicKey, secretKey: a.secretKey })).toThrow(
      /curve.publicKey is not the public key of curve.secretKey/,
    );
    expect(() => checkServiceCurve('curve', { ...a, allowedClientKeys: ['nope'] })).toThrow(
      /curve.allowedClientKeys\[0\] must be a 40-character Z85 CURVE key/,
    );
  });

  it('a client with keys will not talk in the clear, and one without keys cannot talk to a CURVE server', () => {
    const own = curveKeyPair();
    const server = curveKeyPair();
    expect(clientCurveFor(undefined, undefined, 'reporter r1')).toBeUndefined();
    expect(clientCurveFor(own, server.publicKey, 'reporter r1')).toEqual({
      serverPublicKey: server.publicKey,
      publicKey: own.publicKey,
      secretKey: own.secretKey,
    });
    expect(() => clientCurveFor(own, undefined, 'reporter r1')).toThrow(/published no curveKey/);
    expect(() => clientCurveFor(undefined, server.publicKey, 'reporter r1')).toThrow(/requires CURVE/);
  });
});
