import { connect } from 'node:net';
import path from 'node:path';
import { HaproxyRuntime, type ServerState, renderHaproxy } from '@hashwire/confgen';
import { agentWordFor, startAgentCheck } from '@hashwire/stratum';
import { type HaproxyInstance, getFreePort, makeTempDir, startHaproxy, waitFor } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, RawClient, TestJobSource, createHarness, job } from './server-helpers.js';

/** What a client of the agent port reads before the agent closes the connection. */
function readAgent(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('error', reject);
    socket.on('end', () => resolve(text));
  });
}

describe('agent check listener', () => {
  it('answers one line with the current word and closes', async () => {
    let word: 'up' | 'drain' | 'down' = 'up';
    const agent = await startAgentCheck({ host: '127.0.0.1', status: () => word });
    try {
      expect(await readAgent(agent.port)).toBe('up\n');
      word = 'drain';
      expect(await readAgent(agent.port)).toBe('drain\n');
      expect(agent.answered).toBe(2);
    } finally {
      await agent.close();
    }
  });

  it('says up only for a running server with a job, drain while draining, down otherwise', () => {
    const job = 'j1';
    expect(agentWordFor({ state: 'running', currentJobId: job })).toBe('up');
    expect(agentWordFor({ state: 'running', currentJobId: null })).toBe('down');
    expect(agentWordFor({ state: 'draining', currentJobId: job })).toBe('drain');
    expect(agentWordFor({ state: 'suspended', currentJobId: job })).toBe('down');
    expect(agentWordFor({ state: 'created', currentJobId: null })).toBe('down');
    expect(agentWordFor({ state: 'closed', currentJobId: job })).toBe('down');
  });
});

describe('agent check through a real HAProxy', () => {
  let h: Harness;
  let haproxy: HaproxyInstance | undefined;
  const cleanups: (() => Promise<unknown> | unknown)[] = [];

  beforeAll(async () => {
    h = await createHarness();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await h.close();
  });

  /** A real stratum server with its agent, behind HAProxy with fast checks. */
  async function serverBehindHaproxy(graceMs = 30_000) {
    const jobs = new TestJobSource();
    jobs.push(job('a1'));
    const { server } = await h.start({ jobs, trustedProxies: ['127.0.0.0/8'], drain: { graceMs } });
    const agent = await startAgentCheck({ host: '127.0.0.1', status: () => agentWordFor(server.stats()) });
    cleanups.push(() => agent.close());
    const dir = await makeTempDir('agent-haproxy');
    haproxy = await startHaproxy(
      renderHaproxy({
        statsSocket: path.join(dir, 'admin.sock'),
        frontend: { bind: '127.0.0.1', port: await getFreePort() },
        backend: { check: { intervalMs: 100, rise: 1, fall: 1, agentIntervalMs: 100 } },
        servers: [{ name: 's1', address: '127.0.0.1', port: server.port, agentPort: agent.port }],
      }),
    );
    cleanups.push(() => haproxy?.stop());
    const runtime = new HaproxyRuntime({ socketPath: haproxy.statsSocket });
    const state = async (): Promise<ServerState | undefined> =>
      (await runtime.serversState('stratum')).find((s) => s.name === 's1');
    await waitFor(async () => (await state())?.operational === 'running', { what: 's1 up in HAProxy' });
    return { server, agent, state };
  }

  it('a draining stratum server tells HAProxy to drain it', async () => {
    const { server, agent, state } = await serverBehindHaproxy();
    expect((await state())?.drain).toBe(false);
    // A miner that ignores client.reconnect keeps the server draining (until graceMs).
    const stubborn = await RawClient.connect(server.port);
    cleanups.push(() => stubborn.close());
    await stubborn.handshake();
    const drained = server.drain();
    const answeredBefore = agent.answered;
    await waitFor(async () => (await state())?.drain === true, { what: 'HAProxy sets s1 to drain' });
    expect(agent.answered).toBeGreaterThan(answeredBefore);
    expect(server.stats().state).toBe('draining');
    stubborn.close();
    await drained;
  });

  it('a suspended server is down for HAProxy, and up again when it resumes', async () => {
    const { server, state } = await serverBehindHaproxy();
    server.suspend('no daemon');
    await waitFor(async () => (await state())?.operational === 'stopped', { what: 's1 down in HAProxy' });
    expect((await state())?.maint).toBe(false);
    server.resume();
    await waitFor(async () => (await state())?.operational === 'running', { what: 's1 up again' });
    expect((await state())?.drain).toBe(false);
  });
});
