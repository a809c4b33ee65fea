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
