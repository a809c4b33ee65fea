import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * PROXY protocol v1 (text) and v2 (binary), as HAProxy sends them with `send-proxy` /
 * `send-proxy-v2`: the real client address, and with v2 the unique-id TLV (0x05) that
 * becomes the connection id. Headers are honoured only from trusted addresses.
 */
export interface ProxyHeader {
  version: 1 | 2;
  /** `local`: a health check from the proxy itself (v2 LOCAL or v1 UNKNOWN); keep the socket's own address. */
  command: 'proxy' | 'local';
  sourceAddress?: string;
  sourcePort?: number;
  destAddress?: string;
  destPort?: number;
  /** HAProxy's unique-id TLV, when `unique-id-format` is set on the frontend. */
  uniqueId?: string;
}

export class ProxyProtocolError extends Error {
  override readonly name = 'ProxyProtocolError';
}

export type ProxyParse = { status: 'need-more' } | { status: 'done'; header: ProxyHeader; consumed: number };

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
const V1_MAX = 107;
const TLV_UNIQUE_ID = 0x05;

/** True when `data` could still be (or is) the start of a PROXY header. */
export function looksLikeProxyHeader(data: Buffer): boolean {
  const n = Math.min(data.length, 12);
  return (
    data.subarray(0, Math.min(n, 6)).equals(V1_PREFIX.subarray(0, Math.min(n, 6))) ||
    data.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n))
  );
}

/**
 * Parses a PROXY header at the start of `data`. `need-more` until the whole header is there;
 * throws ProxyProtocolError on anything malformed (the connection should be closed).
 */
export function parseProxyHeader(data: Buffer): ProxyParse {
  if (data.length === 0) return { status: 'need-more' };
  if (data[0] === 0x0d) return parseV2(data);
  if (data[0] === 0x50) return parseV1(data);
  throw new ProxyProtocolError('expected a PROXY protocol header');
}

function parseV1(data: Buffer): ProxyParse {
  const prefix = Math.min(data.length, V1_PREFIX.length);
  if (!data.subarray(0, prefix).equals(V1_PREFIX.subarray(0, prefix))) {
    throw new ProxyProtocolError('expected a PROXY protocol header');
  }
  const end = data.indexOf('\r\n');
  if (end === -1) {
    if (data.length >= V1_MAX) throw new ProxyProtocolError(`PROXY v1 header longer than ${V1_MAX} bytes`);
    return { status: 'need-more' };
  }
  if (end + 2 > V1_MAX) throw new ProxyProtocolError(`PROXY v1 header longer than ${V1_MAX} bytes`);
  const parts = data.toString('latin1', 0, end).split(' ');
  const consumed = end + 2;
  if (parts[1] === 'UNKNOWN') return { status: 'done', consumed, header: { version: 1, command: 'local' } };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) {
    throw new ProxyProtocolError('malformed PROXY v1 header');
  }
  const [, family, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const validIp = family === 'TCP4' ? isIPv4 : isIPv6;
  if (!validIp(src) || !validIp(dst))
    throw new ProxyProtocolError(`PROXY v1 header has a bad ${family} address`);
  return {
    status: 'done',
    consumed,
    header: {
      version: 1,
      command: 'proxy',
      sourceAddress: src,
      sourcePort: port(sport),
      destAddress: dst,
      destPort: port(dport),
    },
  };
}

function port(text: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n > 65535)
    throw new ProxyProtocolError(`PROXY v1 header has a bad port "${text}"`);
  return n;
}

function parseV2(data: Buffer): ProxyParse {
  const n = Math.min(data.length, 12);
  if (!data.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n))) {
    throw new ProxyProtocolError('expected a PROXY protocol header');
  }
  if (data.length < 16) return { status: 'need-more' };
  const verCmd = data[12]!;
  if (verCmd >> 4 !== 2) throw new ProxyProtocolError(`PROXY v2 header has version ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new ProxyProtocolError(`PROXY v2 header has unknown command ${cmd}`);
  const family = data[13]!;
  const length = data.readUInt16BE(14);
  if (data.length < 16 + length) return { status: 'need-more' };
  const consumed = 16 + length;
  const body = data.subarray(16, consumed);
  const header: ProxyHeader = { version: 2, command: cmd === 0 ? 'local' : 'proxy' };
  let tlvStart = 0;
  if (cmd === 1) {
    if (family === 0x11 || family === 0x12) {
      if (length < 12) throw new ProxyProtocolError('PROXY v2 IPv4 address block too short');
      header.sourceAddress = `${body[0]}.${body[1]}.${body[2]}.${body[3]}`;
      header.destAddress = `${body[4]}.${body[5]}.${body[6]}.${body[7]}`;
      header.sourcePort = body.readUInt16BE(8);
      header.destPort = body.readUInt16BE(10);
      tlvStart = 12;
    } else if (family === 0x21 || family === 0x22) {
      if (length < 36) throw new ProxyProtocolError('PROXY v2 IPv6 address block too short');
      header.sourceAddress = ipv6(body.subarray(0, 16));
      header.destAddress = ipv6(body.subarray(16, 32));
      header.sourcePort = body.readUInt16BE(32);
      header.destPort = body.readUInt16BE(34);
      tlvStart = 36;
    } else if (family !== 0x00) {
      // UNIX sockets or unknown families: no usable address; keep the socket's own.
      tlvStart = length;
    }
  } else {
    // LOCAL (health check): the address block, if any, is to be ignored.
    tlvStart = family === 0x11 ? 12 : family === 0x21 ? 36 : family === 0x31 ? 216 : 0;
    tlvStart = Math.min(tlvStart, length);
  }
  for (let i = tlvStart; i < length; ) {
    if (i + 3 > length) throw new ProxyProtocolError('PROXY v2 TLV truncated');
    const type = body[i]!;
    const len = body.readUInt16BE(i + 1);
    if (i + 3 + len > length) throw new ProxyProtocolError('PROXY v2 TLV truncated');
    if (type === TLV_UNIQUE_ID) header.uniqueId = body.toString('latin1', i + 3, i + 3 + len);
    i += 3 + len;
  }
  return { status: 'done', consumed, header };
}

/** 16 bytes → RFC 5952 text (lowercase, longest run of two or more zero groups as `::`). */
function ipv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Trusted proxy addresses from CIDRs like `127.0.0.1/32` or `10.0.0.0/8`; throws naming a bad entry. */
export function trustedProxies(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, bits] = cidr.split('/');
    const family = address && isIPv4(address) ? 'ipv4' : address && isIPv6(address) ? 'ipv6' : null;
    const prefix = bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits);
    if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) {
      throw new RangeError(
        `trusted proxy "${cidr}" is not an address or CIDR (e.g. 127.0.0.1/32, 10.0.0.0/8, ::1/128)`,
      );
    }
    list.addSubnet(address!, prefix, family);
  }
  return list;
}

/** Whether a socket's remote address may send a PROXY header (IPv4-mapped IPv6 handled). */
export function isTrustedProxy(list: BlockList, remoteAddress: string | undefined): boolean {
  if (!remoteAddress) return false;
  const mapped = remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
  return isIPv4(mapped) ? list.check(mapped, 'ipv4') : list.check(mapped, 'ipv6');
}
