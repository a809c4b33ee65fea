import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  type HaproxyRenderInput,
  RenderInputError,
  haproxyServerFromService,
  haproxyServerName,
  renderHaproxy,
} from '@hashwire/confgen';
import type { ServiceInfo } from '@hashwire/registry';
import { makeTempDir } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { expectGolden, goldenPath } from './golden.js';

const run = promisify(execFile);

// Placeholders in the goldens; the haproxy -c test puts real files in their place.
const SOCKET = '/run/hashwire/haproxy.sock';
const PEM = '/etc/hashwire/stratum.pem';

const three: HaproxyRenderInput['servers'] = [
  { name: 'stratum-1', address: '127.0.0.1', port: 23001, agentPort: 23501 },
  // An agent on another address, and a server that has no agent.
  { name: 'stratum-2', address: '10.0.0.8', port: 23000, agentPort: 23500, agentAddress: '10.0.1.8' },
  { name: 'legacy', address: '10.0.0.9', port: 3333 },
];

const variants: Record<string, HaproxyRenderInput> = {
  'haproxy-empty.cfg': { statsSocket: SOCKET },
  'haproxy-one-tls.cfg': {
    statsSocket: SOCKET,
    frontend: { tls: { port: 3334, certificate: PEM } },
    servers: [{ name: 'stratum-1', address: '127.0.0.1', port: 23001, agentPort: 23501 }],
  },
  'haproxy-three.cfg': {
    statsSocket: SOCKET,
    servers: three,
    statsPage: { port: 8404 },
    log: 'stderr format raw local0 info',
  },
  'haproxy-three-tls.cfg': {
    statsSocket: SOCKET,
    maxconn: 8000,
    frontend: { name: 'miners', bind: '0.0.0.0', port: 3333, tls: { port: 3443, certificate: PEM } },
    backend: {
      name: 'ltc',
      retries: 2,
      check: { intervalMs: 1500, rise: 3, fall: 2, agentIntervalMs: 1000 },
    },
    timeouts: { connectMs: 3000, clientMs: 600_000, serverMs: 600_000, tunnelMs: 7_200_000, checkMs: 2000 },
    servers: three,
    statsPage: { bind: '0.0.0.0', port: 8404, uri: '/haproxy', refreshSec: 10 },
  },
  // A pool of two chains: each its own public ports, backend and servers.
  'haproxy-two-chains.cfg': {
    statsSocket: SOCKET,
    frontend: { tls: { port: 3334, certificate: PEM } },
    servers: [three[0]!],
    routes: [
      {
        frontend: { name: 'stratum_in-btc', port: 3335, tls: { port: 3336, certificate: PEM } },
        backend: {
          name: 'stratum-btc',
          check: { intervalMs: 1500, rise: 3, fall: 2, agentIntervalMs: 1000 },
        },
        servers: [three[1]!, three[2]!],
      },
    ],
  },
  // The api's HTTP frontend beside the miners': instances checked on their status port's
  // /healthz (one on another address), logging on.
  'haproxy-api.cfg': {
    statsSocket: SOCKET,
    servers: [three[0]!],
    log: 'stderr format raw local0 info',
    api: {
      frontend: { bind: '0.0.0.0', port: 8080 },
      backend: { check: { intervalMs: 1000, rise: 1, fall: 2 } },
      servers: [
        { name: 'api-1', address: '127.0.0.1', port: 24000, checkPort: 29004 },
        { name: 'api-2', address: '10.0.0.8', port: 24000, checkPort: 29004, checkAddress: '10.0.1.8' },
      ],
    },
  },
};

describe('renderHaproxy', () => {
  for (const [name, input] of Object.entries(variants)) {
    it(`renders ${name} exactly`, () => {
      expectGolden(name, renderHaproxy(input));
    });
  }

  it('haproxy -c accepts every golden, without a single warning', async () => {
    const dir = await makeTempDir('confgen-check');
    const pem = path.join(dir, 'stratum.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-keyout',
      pem,
      '-out',
      pem,
    ]);
    for (const name of Object.keys(variants)) {
      const text = readFileSync(goldenPath(name), 'utf8')
        .replaceAll(SOCKET, path.join(dir, 'admin.sock'))
        .replaceAll(PEM, pem);
      const file = path.join(dir, name);
      await writeFile(file, text);
      // -dW: a warning fails the check too.
      const result = await run('haproxy', ['-dW', '-c', '-f', file]).catch((error) => error);
      expect(`${name}: ${result.stdout}${result.stderr}`.trim()).toBe(`${name}: Configuration file is valid`);
    }
  });

  it('fronts the api over HTTP: /healthz checks on the status port, a retry elsewhere, WebSocket-long tunnels', () => {
    const text = renderHaproxy(variants['haproxy-api.cfg']!);
    const api = text.slice(text.indexOf('frontend api_in'));
    expect(api).toMatch(/^frontend api_in\n {4}mode http\n {4}bind 0\.0\.0\.0:8080\n/);
    expect(api).toContain('    option httpchk GET /healthz\n    http-check expect status 200\n');
    expect(api).toContain('    option redispatch 1\n');
    expect(api.match(/ {4}timeout tunnel 1h\n/g)).toHaveLength(1);
    expect(api).toContain('    default-server check inter 1s rise 1 fall 2\n');
    expect(api).toContain('    server api-2 10.0.0.8:24000 port 29004 addr 10.0.1.8\n');
    // No PROXY protocol towards the api: it is HTTP, with X-Forwarded-For.
    expect(api).not.toContain('send-proxy');
    expect(api).toContain('    option forwardfor\n');
    // One port for one frontend.
    expect(() => renderHaproxy({ statsSocket: SOCKET, api: { frontend: { port: 3333 } } })).toThrow(
      /api\.frontend\.port: port 3333 also used by frontend\.port/,
    );
  });

  it('sends the unique-id TLV, hashes consistently and checks every server with an agent', () => {
    const text = renderHaproxy(variants['haproxy-one-tls.cfg'] as HaproxyRenderInput);
    expect(text).toMatch(/^\s+unique-id-format \S/m);
    expect(text).toMatch(/^\s+balance source\n\s+hash-type consistent$/m);
    expect(text).toMatch(/^\s+default-server send-proxy-v2 proxy-v2-options unique-id check /m);
    expect(text).toMatch(/^\s+server stratum-1 127\.0\.0\.1:23001 agent-check agent-port 23501$/m);
    expect(text).toMatch(/^\s+bind :3334 ssl crt \/etc\/hashwire\/stratum\.pem$/m);
  });

  it('names every bad field with its path and what is allowed', () => {
    const bad = {
      statsSocket: 'has space',
      maxconn: 0,
      frontend: { port: 70_000, tls: { port: 3333, certificate: '' } },
      servers: [
        { name: 'ok', address: '127.0.0.1', port: 1 },
        { name: 'bad name', address: '127.0.0.1', port: 'x' },
      ],
      timeouts: { clientMs: -1 },
      statsPage: { port: 8404, uri: 'no-slash' },
      typo: true,
    } as unknown as HaproxyRenderInput;
    let error: RenderInputError | undefined;
    try {
      renderHaproxy(bad);
    } catch (e) {
      error = e as RenderInputError;
    }
    expect(error).toBeInstanceOf(RenderInputError);
    const byPath = Object.fromEntries((error?.issues ?? []).map((i) => [i.path, i.message]));
    expect(byPath).toMatchObject({
      statsSocket: expect.stringContaining('must not contain spaces'),
      maxconn: expect.stringContaining('positive'),
      'frontend.port': 'must be a port from 1 to 65535',
      'frontend.tls.certificate': expect.stringContaining('must not be empty'),
      'servers.1.name': expect.stringContaining("letters, digits, '_'"),
      'servers.1.port': 'must be a port number',
      'timeouts.clientMs': expect.stringContaining('positive'),
      'statsPage.uri': 'must be a path starting with /',
      typo: 'unknown field',
    });
    expect(error?.message).toMatch(/^haproxy render input is invalid:\n {2}statsSocket: /);
  });

  it('refuses two servers with one name, and TLS on the plain port', () => {
    const input: HaproxyRenderInput = {
      statsSocket: SOCKET,
      frontend: { port: 3333, tls: { port: 3333, certificate: PEM } },
      servers: [
        { name: 'a', address: '127.0.0.1', port: 1 },
        { name: 'a', address: '127.0.0.1', port: 2 },
      ],
    };
    expect(() => renderHaproxy(input)).toThrow(
      /servers\.1\.name: duplicate server name a\n {2}frontend\.tls\.port: must differ from frontend\.port \(3333\)/,
    );
  });

  it('refuses a further route that reuses a name or a port of another route', () => {
    const route = (name: string, port: number, tlsPort?: number) => ({
      frontend: { name: `in-${name}`, port, ...(tlsPort && { tls: { port: tlsPort, certificate: PEM } }) },
      backend: { name },
    });
    const input: HaproxyRenderInput = {
      statsSocket: SOCKET,
      frontend: { tls: { port: 3334, certificate: PEM } },
      routes: [route('stratum', 3335), route('btc', 3334), route('doge', 3340, 3335)],
    };
    let error: RenderInputError | undefined;
    try {
      renderHaproxy(input);
    } catch (e) {
      error = e as RenderInputError;
    }
    expect(error?.issues).toEqual([
      { path: 'routes.0.backend.name', message: 'backend name stratum also used by backend.name' },
      { path: 'routes.1.frontend.port', message: 'port 3334 also used by frontend.tls.port' },
      { path: 'routes.2.frontend.tls.port', message: 'port 3335 also used by routes.0.frontend.port' },
    ]);
    // A further route has no defaults to fall back on: they would clash with the first route's.
    expect(() =>
      renderHaproxy({ statsSocket: SOCKET, routes: [{ servers: [] }] } as unknown as HaproxyRenderInput),
    ).toThrow(/routes\.0\.frontend: /);
  });
});

describe('servers from the registry', () => {
  const service = (over: Partial<ServiceInfo>): ServiceInfo => ({
    kind: 'stratum',
    id: 'stratum-1',
    rpc: '',
    http: '',
    pid: 1,
    version: '0.1.0',
    chain: 'litecoin-regtest',
    state: 'up',
    load: 0,
    startedAt: 0,
    ...over,
  });

  it('maps a registered stratum server to its backend server', () => {
    expect(
      haproxyServerFromService(service({ stratum: '127.0.0.1:23001', agent: '127.0.0.1:23501' })),
    ).toEqual({
      name: 'stratum-1',
      address: '127.0.0.1',
      port: 23001,
      agentPort: 23501,
    });
    expect(haproxyServerFromService(service({ stratum: '[::1]:23001', agent: '10.0.0.1:9' }))).toEqual({
      name: 'stratum-1',
      address: '::1',
      port: 23001,
      agentPort: 9,
      agentAddress: '10.0.0.1',
    });
  });

  it('leaves out servers without a miner endpoint and draining ones', () => {
    expect(haproxyServerFromService(service({}))).toBeNull();
    expect(haproxyServerFromService(service({ stratum: 'nonsense' }))).toBeNull();
    expect(haproxyServerFromService(service({ stratum: '127.0.0.1:1', state: 'draining' }))).toBeNull();
  });

  it('gives ids HAProxy would refuse a safe, distinct name', () => {
    expect(haproxyServerName('stratum-1')).toBe('stratum-1');
    const a = haproxyServerName('eu west/1');
    const b = haproxyServerName('eu west 1');
    expect(a).toMatch(/^eu_west_1-[0-9a-f]{8}$/);
    expect(b).toMatch(/^eu_west_1-[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
  });
});
