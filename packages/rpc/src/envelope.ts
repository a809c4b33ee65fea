import { RPC_VERSION, RpcKind } from '@hashwire/protocol';
import { Packr, Unpackr } from 'msgpackr';

// Plain msgpack (no record extension), so any msgpack implementation can speak to us.
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/**
 * Reserved push methods, sent as `[1, 'push', 0, method, null]`. Methods starting with `$` belong to
 * the transport and cannot be registered as handlers.
 * - `$hb`: heartbeat. A client sends one every interval; the server answers each with one.
 * - `$drop`: the server dropped this peer's subscriptions (it was silent); a live client re-subscribes.
 */
export const HEARTBEAT_METHOD = '$hb';
export const DROPPED_METHOD = '$drop';
export const RESERVED_PREFIX = '$';

/** Largest request id before the counter wraps; ids fit msgpack uint32 and 0 is reserved for pushes. */
export const MAX_REQUEST_ID = 0x7fffffff;

export function encodeEnvelope(kind: RpcKind, id: number, method: string, body: unknown): Buffer {
  return packr.pack([RPC_VERSION, kind, id, method, body]);
}

/** Encoded once at load: both heartbeat directions send these same bytes. */
export const HEARTBEAT_FRAME = encodeEnvelope(RpcKind.Push, 0, HEARTBEAT_METHOD, null);
export const DROPPED_FRAME = encodeEnvelope(RpcKind.Push, 0, DROPPED_METHOD, null);

export type MalformedReason = 'frames' | 'tooLarge' | 'decode' | 'envelope' | 'version' | 'kind';
export const MALFORMED_REASONS: readonly MalformedReason[] = [
  'frames',
  'tooLarge',
  'decode',
  'envelope',
  'version',
  'kind',
];

export interface DecodedEnvelope {
  kind: string;
  id: number;
  method: string;
  body: unknown;
}

export type DecodeResult =
  | { ok: true; envelope: DecodedEnvelope }
  | {
      ok: false;
      reason: MalformedReason;
      /** Id of the message if one could be recovered, else 0. */
      id: number;
      /** Kind of the message if one could be recovered. */
      kind: string | null;
      detail: string;
    };

function isRequestId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 0xffffffff;
}

/** Decodes and validates one envelope frame; on failure, recovers what it can for an error reply. */
export function decodeEnvelope(frame: Buffer, maxBytes: number): DecodeResult {
  if (frame.length > maxBytes) {
    const head = peekHeader(frame);
    return { ok: false, reason: 'tooLarge', ...head, detail: `${frame.length} bytes > ${maxBytes}` };
  }
  let value: unknown;
  try {
    value = unpackr.unpack(frame);
  } catch (err) {
    const head = peekHeader(frame);
    return { ok: false, reason: 'decode', ...head, detail: (err as Error).message };
  }
  if (!Array.isArray(value) || value.length !== 5) {
    const head = Array.isArray(value)
      ? { id: isRequestId(value[2]) ? value[2] : 0, kind: kindOf(value[1]) }
      : none;
    return { ok: false, reason: 'envelope', ...head, detail: 'not a 5-element array' };
  }
  const [version, kind, id, method, body] = value as [unknown, unknown, unknown, unknown, unknown];
  const recovered = { id: isRequestId(id) ? id : 0, kind: kindOf(kind) };
  if (version !== RPC_VERSION) {
    return { ok: false, reason: 'version', ...recovered, detail: `version ${String(version)}` };
  }
  if (kind !== RpcKind.Request && kind !== RpcKind.Reply && kind !== RpcKind.Error && kind !== RpcKind.Push) {
    return { ok: false, reason: 'kind', ...recovered, detail: `kind ${String(kind)}` };
  }
  if (typeof method !== 'string' || typeof id !== 'number' || !(id === 0 || isRequestId(id))) {
    return { ok: false, reason: 'envelope', ...recovered, detail: 'bad id or method' };
  }
  return { ok: true, envelope: { kind, id, method, body } };
}

const none = { id: 0, kind: null };

function kindOf(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/**
 * Reads `[version, kind, id, ...` from the start of a frame without decoding the rest, so that an
 * oversized or partly corrupt request can still be answered with an error under its id.
 */
export function peekHeader(frame: Buffer): { id: number; kind: string | null } {
  const reader = new HeaderReader(frame);
  try {
    const length = reader.arrayLength();
    if (length < 3) return none;
    reader.skipScalar();
    const kind = reader.stringOrSkip();
    const id = reader.uint();
    return { id: isRequestId(id) ? id : 0, kind };
  } catch {
    return none;
  }
}

class HeaderReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  private byte(): number {
    if (this.pos >= this.buf.length) throw new RangeError('short');
    return this.buf[this.pos++] as number;
  }

  private take(n: number): number {
    const start = this.pos;
    if (start + n > this.buf.length) throw new RangeError('short');
    this.pos += n;
    return start;
  }

  arrayLength(): number {
    const b = this.byte();
    if (b >= 0x90 && b <= 0x9f) return b & 0x0f;
    if (b === 0xdc) return this.buf.readUInt16BE(this.take(2));
    if (b === 0xdd) return this.buf.readUInt32BE(this.take(4));
    throw new TypeError('not an array');
  }

  /** Length of a string whose type byte is `b`, or -1 if `b` is not a string type. */
  private stringLength(b: number): number {
    if (b >= 0xa0 && b <= 0xbf) return b & 0x1f;
    if (b === 0xd9) return this.buf.readUInt8(this.take(1));
    if (b === 0xda) return this.buf.readUInt16BE(this.take(2));
    if (b === 0xdb) return this.buf.readUInt32BE(this.take(4));
    return -1;
  }

  stringOrSkip(): string | null {
    const b = this.byte();
    const length = this.stringLength(b);
    if (length < 0) {
      this.pos--;
      this.skipScalar();
      return null;
    }
    const start = this.take(length);
    return this.buf.toString('utf8', start, start + length);
  }

  skipScalar(): void {
    const b = this.byte();
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return;
    if (b >= 0xcc && b <= 0xcf) {
      this.take(1 << (b - 0xcc));
      return;
    }
    if (b >= 0xd0 && b <= 0xd3) {
      this.take(1 << (b - 0xd0));
      return;
    }
    const length = this.stringLength(b);
    if (length < 0) throw new TypeError('not a scalar');
    this.take(length);
  }

  uint(): number {
    const b = this.byte();
    if (b <= 0x7f) return b;
    if (b === 0xcc) return this.buf.readUInt8(this.take(1));
    if (b === 0xcd) return this.buf.readUInt16BE(this.take(2));
    if (b === 0xce) return this.buf.readUInt32BE(this.take(4));
    return 0;
  }
}
