import { createPrivateKey, createPublicKey } from 'node:crypto';
import { isLoopbackHost } from '@hashwire/protocol';
import { type Context, Router } from 'zeromq';
import type { RpcLogger } from './types.js';

const Z85_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_DECODE = new Map<string, number>([...Z85_ALPHABET].map((ch, i) => [ch, i]));

/** Z85 (ZeroMQ RFC 32) text of `bytes`, whose length must be a multiple of 4. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0)
    throw new RangeError(`z85Encode: length ${bytes.length} is not a multiple of 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let value = view.getUint32(i);
    const chunk = new Array<string>(5);
    for (let j = 4; j >= 0; j--) {
      chunk[j] = Z85_ALPHABET[value % 85] as string;
      value = Math.floor(value / 85);
    }
    out += chunk.join('');
  }
  return out;
}

/** Bytes of Z85 text, or null if it is not valid Z85 of a length that is a multiple of 5. */
export function z85Decode(text: string): Buffer | null {
  if (text.length % 5 !== 0) return null;
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const digit = Z85_DECODE.get(text[i + j] as string);
      if (digit === undefined) return null;
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) return null;
    out.writeUInt32BE(value, (i / 5) * 4);
  }
  return out;
}

/** Throws a clear error unless `key` is a 40-character Z85 CURVE key. */
export function checkCurveKey(field: string, key: unknown): string {
  if (typeof key !== 'string' || key.length !== 40 || z85Decode(key) === null) {
    throw new TypeError(`${field} must be a 40-character Z85 CURVE key (see curveKeyPair())`);
  }
  return key;
}

export const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
const ZAP_VERSION = '1.0';

/**
 * A ZAP 1.0 handler (ZeroMQ RFC 27) admitting CURVE clients whose public key is in `allowed`.
 * libzmq asks the handler bound to `inproc://zeromq.zap.01` in the server socket's context about
 * every handshake, so it must run in the server's own context and be bound before the server binds.
 */
export class ZapHandler {
  denied = 0;
  allowed = 0;
  private readonly socket: Router;
  private readonly loop: Promise<void>;

  private constructor(
    socket: Router,
    private readonly keys: ReadonlySet<string>,
    private readonly logger: RpcLogger,
  ) {
    this.socket = socket;
    this.loop = this.serve();
  }

  static async start(context: Context, keys: ReadonlySet<string>, logger: RpcLogger): Promise<ZapHandler> {
    const socket = new Router({ context, linger: 0, sendTimeout: 0 });
    await socket.bind(ZAP_ENDPOINT);
    return new ZapHandler(socket, keys, logger);
  }

  private async serve(): Promise<void> {
    for await (const frames of this.socket) {
      // [routing id, '', version, request id, domain, address, identity, mechanism, ...credentials]
      const [routingId, delimiter, version, requestId, , address, , mechanism, publicKey] = frames;
      if (!routingId || !delimiter || !requestId) continue;
      let status = '400';
      let text = 'denied';
      let userId = '';
      if (version?.toString() !== ZAP_VERSION) {
        text = 'unsupported ZAP version';
      } else if (mechanism?.toString() !== 'CURVE' || publicKey?.length !== 32) {
        text = 'CURVE required';
      } else {
        const key = z85Encode(publicKey);
        if (this.keys.has(key)) {
          status = '200';
          text = 'OK';
          userId = key;
        }
      }
      if (status === '200') this.allowed++;
      else {
        this.denied++;
        // Debug only: a refused client retries every 100 ms; stats().authDenied counts them.
        this.logger.debug(
          { address: address?.toString(), reason: text },
          'rpc: client refused by CURVE policy',
        );
      }
      this.socket.send([routingId, '', ZAP_VERSION, requestId, status, text, userId, '']).catch(() => {});
    }
  }

  async close(): Promise<void> {
    this.socket.close();
    await this.loop.catch(() => {});
  }
}

// X25519 private key as PKCS#8 DER: this fixed header, then the 32 key bytes.
const PKCS8_X25519_HEADER = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** The Z85 public key of a Z85 CURVE secret key (CURVE keys are X25519 keys). */
export function curvePublicKey(secretKey: string): string {
  const secret = z85Decode(checkCurveKey('secretKey', secretKey)) as Buffer;
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_X25519_HEADER, secret]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return z85Encode(spki.subarray(spki.length - 32));
}

/** A service's CURVE identity: its key pair, and as a server the client keys it lets in. */
export interface ServiceCurve {
  /** This service's public key (Z85): its server key when it serves RPC, its client key when it calls. */
  publicKey: string;
  secretKey: string;
  /**
   * Public keys of the clients a server lets in (ZAP allow list): the pool's service keys. Empty
   * or absent on a server means only encryption, no authentication; services always give it.
   */
  allowedClientKeys?: readonly string[];
}

/**
 * Checks a service's CURVE settings: both keys Z85, the public key the one of the secret key
 * (a mix-up of two key files is caught at start, not as refused handshakes), the allow list
 * Z85. Throws a TypeError naming `<field>.<key>`.
 */
export function checkServiceCurve(field: string, curve: unknown): ServiceCurve {
  if (typeof curve !== 'object' || curve === null || Array.isArray(curve))
    throw new TypeError(`${field} must be an object { publicKey, secretKey, allowedClientKeys }`);
  const c = curve as Record<string, unknown>;
  const publicKey = checkCurveKey(`${field}.publicKey`, c.publicKey);
  const secretKey = checkCurveKey(`${field}.secretKey`, c.secretKey);
  if (curvePublicKey(secretKey) !== publicKey) {
    throw new TypeError(
      `${field}.publicKey is not the public key of ${field}.secretKey (two key files mixed up? hashwire keys prints the pairs)`,
    );
  }
  let allowedClientKeys: string[] | undefined;
  if (c.allowedClientKeys !== undefined) {
    if (!Array.isArray(c.allowedClientKeys))
      throw new TypeError(`${field}.allowedClientKeys must be a list of Z85 public keys`);
    allowedClientKeys = c.allowedClientKeys.map((k, i) =>
      checkCurveKey(`${field}.allowedClientKeys[${i}]`, k),
    );
  }
  return { publicKey, secretKey, ...(allowedClientKeys ? { allowedClientKeys } : {}) };
}

/**
 * Refuses an RPC server off loopback without CURVE and a client allow list: anyone who can reach
 * the port could otherwise call every method (credit shares, drain the service).
 */
export function requireCurveOffLoopback(
  hostField: string,
  host: string,
  curveField: string,
  curve: { allowedClientKeys?: readonly string[] } | undefined,
): void {
  if (isLoopbackHost(host)) return;
  if (!curve) {
    throw new TypeError(
      `${curveField} is required: ${hostField} ${host} is not loopback (127.0.0.1, ::1), so RPC must be authenticated with CURVE keys (generate them with "hashwire keys")`,
    );
  }
  if (!curve.allowedClientKeys || curve.allowedClientKeys.length === 0) {
    throw new TypeError(
      `${curveField}.allowedClientKeys must list the pool's service public keys: ${hostField} ${host} is not loopback, so clients must be authenticated`,
    );
  }
}

/**
 * The client CURVE options for calling a server that published `serverKey` (its registry
 * `curveKey`), with this service's keys `own`. Throws when the two sides disagree: a CURVE
 * server and a client without keys would only time out, and a client with keys refuses to
 * talk in the clear to a server that published none.
 */
export function clientCurveFor(
  own: ServiceCurve | undefined,
  serverKey: string | undefined,
  server: string,
): { serverPublicKey: string; publicKey: string; secretKey: string } | undefined {
  if (!serverKey && !own) return undefined;
  if (!own) throw new TypeError(`${server} requires CURVE, and this service has no curve keys`);
  if (!serverKey)
    throw new TypeError(
      `${server} published no curveKey: this service uses CURVE and will not talk in the clear`,
    );
  return {
    serverPublicKey: checkCurveKey(`${server} curveKey`, serverKey),
    publicKey: own.publicKey,
    secretKey: own.secretKey,
  };
}

/** The RPC server options of a service's CURVE identity. */
export function serverCurveOf(curve: ServiceCurve): {
  serverPublicKey: string;
  serverSecretKey: string;
  allowedClientKeys?: readonly string[];
} {
  return {
    serverPublicKey: curve.publicKey,
    serverSecretKey: curve.secretKey,
    ...(curve.allowedClientKeys ? { allowedClientKeys: curve.allowedClientKeys } : {}),
  };
}
