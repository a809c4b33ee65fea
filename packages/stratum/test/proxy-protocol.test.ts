import { ProxyProtocolError, isTrustedProxy, parseProxyHeader, trustedProxies } from '@hashwire/stratum';
import { describe, expect, it } from 'vitest';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function v2(cmd: number, family: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([SIG, Buffer.from([0x20 | cmd, family]), len, body]);
}

function tlv(type: number, value: string): Buffer {
  const v = Buffer.from(value, 'latin1');
  const head = Buffer.from([type, 0, 0]);
  head.writeUInt16BE(v.length, 1);
  return Buffer.concat([head, v]);
}

const ipv4Block = Buffer.from([203, 0, 113, 7, 10, 0, 0, 2, 0xd4, 0x31, 0x0d, 0x05]); // 54321 → 3333
const stratumLine = Buffer.from('{"id":1,"method":"mining.subscribe","params":[]}\n');

describe('PROXY protocol', () => {
  it('parses v1 TCP4 and TCP6 and says how many bytes it used', () => {
    const data = Buffer.concat([
      Buffer.from('PROXY TCP4 198.51.100.22 10.0.0.2 35646 3333\r\n'),
      stratumLine,
    ]);
    const r = parseProxyHeader(data);
    expect(r.status).toBe('done');
    if (r.status !== 'done') return;
    expect(r.header).toEqual({
      version: 1,
      command: 'proxy',
      sourceAddress: '198.51.100.22',
      sourcePort: 35646,
      destAddress: '10.0.0.2',
      destPort: 3333,
    });
    expect(data.subarray(r.consumed)).toEqual(stratumLine);
    const six = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 4000 3333\r\n'));
    expect(six.status === 'done' && six.header.sourceAddress).toBe('2001:db8::1');
    const unknown = parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'));
    expect(unknown.status === 'done' && unknown.header.command).toBe('local');
  });

  it('parses v2 PROXY over IPv4 with the unique-id TLV, split at every byte', () => {
    const header = v2(1, 0x11, Buffer.concat([ipv4Block, tlv(0x04, 'x'), tlv(0x05, 'C0A8:1F40_0001')]));
    const data = Buffer.concat([header, stratumLine]);
    for (let cut = 0; cut < header.length; cut++) {
      expect(parseProxyHeader(data.subarray(0, cut)).status, `cut ${cut}`).toBe('need-more');
    }
    const r = parseProxyHeader(data);
    expect(r).toEqual({
      status: 'done',
      consumed: header.length,
      header: {
        version: 2,
        command: 'proxy',
        sourceAddress: '203.0.113.7',
        sourcePort: 54321,
        destAddress: '10.0.0.2',
        destPort: 3333,
        uniqueId: 'C0A8:1F40_0001',
      },
    });
  });

  it('accepts the v2 LOCAL header HAProxy health checks send (no address)', () => {
    const r = parseProxyHeader(v2(0, 0x00, Buffer.alloc(0)));
    expect(r).toEqual({ status: 'done', consumed: 16, header: { version: 2, command: 'local' } });
  });

  it('parses v2 over IPv6 into the short text form', () => {
    const src = Buffer.from('20010db8000000000000000000000001', 'hex');
    const dst = Buffer.from('20010db8000100000000000000000002', 'hex');
    const ports = Buffer.from([0x9c, 0x40, 0x0d, 0x05]);
    const r = parseProxyHeader(v2(1, 0x21, Buffer.concat([src, dst, ports])));
    expect(r.status === 'done' && r.header).toMatchObject({
      sourceAddress: '2001:db8::1',
      destAddress: '2001:db8:1::2',
      sourcePort: 40000,
    });
  });

  it.each([
    ['plain stratum', stratumLine, 'expected a PROXY protocol header'],
    ['v1 bad family', Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'malformed PROXY v1 header'],
    ['v1 bad address', Buffer.from('PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n'), 'bad TCP4 address'],
    ['v1 bad port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n'), 'bad port "99999"'],
    ['v1 endless', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), 'longer than 107 bytes'],
    ['v2 version 3', Buffer.concat([SIG, Buffer.from([0x31, 0x11, 0, 0])]), 'version 3'],
    ['v2 truncated TLV', v2(1, 0x11, Buffer.concat([ipv4Block, Buffer.from([5, 0, 9, 1])])), 'TLV truncated'],
  ])('refuses %s with a clear error', (_name, data, message) => {
    expect(() => parseProxyHeader(data)).toThrow(ProxyProtocolError);
    expect(() => parseProxyHeader(data)).toThrow(message);
  });

  it('trusts only the configured CIDRs, IPv4-mapped addresses included', () => {
    const list = trustedProxies(['127.0.0.1/32', '10.0.0.0/8', '::1']);
    expect(isTrustedProxy(list, '127.0.0.1')).toBe(true);
    expect(isTrustedProxy(list, '::ffff:10.9.8.7')).toBe(true);
    expect(isTrustedProxy(list, '::1')).toBe(true);
    expect(isTrustedProxy(list, '192.168.1.1')).toBe(false);
    expect(isTrustedProxy(list, undefined)).toBe(false);
    expect(() => trustedProxies(['10.0.0.0/33'])).toThrow(
      'trusted proxy "10.0.0.0/33" is not an address or CIDR',
    );
    expect(() => trustedProxies(['example.com'])).toThrow('trusted proxy "example.com"');
  });
});
