// Issue 18, the dashboard: its three pages in headless Chromium (Debian's, driven by
// playwright-core) against a real pool with sim miners mining, two api instances behind a real
// HAProxy, and the pages loaded through that HAProxy as a browser would.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HaproxyRuntime, type StratumFollower, followApiServers, renderHaproxy } from '@hashwire/confgen';
import { getService } from '@hashwire/registry';
import { readWorkers } from '@hashwire/reporter';
import {
  type HaproxyInstance,
  type HeadlessChromium,
  getFreePort,
  launchChromium,
  startHaproxy,
  waitFor,
} from '@hashwire/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { CHAIN, type MinerGroup, type Pool, startPool } from './pool-harness.js';
import { type ApiProcess, killService, spawnApi } from './service-process.js';

/** Screenshots of each page: a gitignored folder, kept after the run. */
const ARTIFACTS = fileURLToPath(new URL('./artifacts/dashboard/', import.meta.url));
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let pool: Pool;
let browser: HeadlessChromium;
let front: HaproxyInstance;
let follower: StratumFollower;
let base: string;
let miners: MinerGroup;
let solo: MinerGroup;
const apis = new Map<string, ApiProcess>();
let adminToken: string;
let readToken: string;
/** Console errors and uncaught exceptions of every page, by page. */
const pageErrors: string[] = [];

async function startApi(id: string): Promise<ApiProcess> {
  const api = await spawnApi({
    id,
    redisUrl: pool.redisServer!.url,
    keyPrefix: pool.prefix,
    chains: [{ chain: CHAIN, algorithm: 'scrypt' }],
    host: '127.0.0.1',
    port: 0,
    adminTokenFile: pool.adminTokenFile,
    haproxyStatsSocket: front.statsSocket,
    // Miners connect through the stratum HAProxy, as the pool config's chains[].bind says.
    stratumFronts: [{ chain: CHAIN, scheme: 'stratum+tcp', bind: `:${pool.front.port}` }],
    serviceTtlMs: 3000,
    trustProxy: '127.0.0.1',
    logLevel: 'warn',
  });
  apis.set(id, api);
  return api;
}

async function openPage(path: string, token?: string): Promise<Page> {
  const page = await browser.context.newPage();
  // Closed when the test ends, failed or not: a page left open keeps its stream on an api
  // instance, and the api-kill test picks the instance holding a stream as its victim.
  onTestFinished(() => page.close());
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`${path}: ${message.text()}`);
  });
  page.on('pageerror', (error) => pageErrors.push(`${path}: ${error.message}`));
  if (token !== undefined)
    await page.addInitScript((t) => sessionStorage.setItem('hashwire.token', t), token);
  await page.goto(`${base}${path}`);
  await page.waitForFunction(() => document.body.dataset.ready !== undefined);
  expect(await page.evaluate(() => document.body.dataset.ready)).not.toBe('error');
  await page.waitForFunction(() => window.hashwireDashboard?.state === 'connected', undefined, {
    timeout: 30_000,
  });
  return page;
}

async function screenshot(page: Page, name: string): Promise<void> {
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`dashboard screenshot: ${file}`);
}

async function axeViolations(page: Page): Promise<string[]> {
  // Evaluated, not injected as a script tag: the page's CSP allows no inline script.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: { run(): Promise<{ violations: { id: string; nodes: { target: string[] }[] }[] }> };
      }
    ).axe;
    return (await axe.run()).violations.map(
      (v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
    );
  });
  return result;
}

const text = (page: Page, testId: string) => page.locator(`[data-testid="${testId}"]`).first().innerText();
const number = (s: string) => Number(s.replace(/[^0-9.]/g, ''));

beforeAll(async () => {
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  pool = await startPool({
    diff: 2 ** -4,
    // worker.offline within a second of the worker leaving the online window.
    reporterExtra: { onlineSweepMs: 500, confirmations: 3 },
  });
  await pool.startServices({ jobmanager: ['jm-1'], reporter: ['rep-1'], stratum: ['st-1', 'st-2'] });
  // The api's HAProxy as the pool renders it (HTTP frontend, instances checked on /healthz),
  // its backend filled from discovery by the api follower, as `hashwire up` runs it.
  const [webPort, unusedStratumPort] = await Promise.all([getFreePort(), getFreePort()]);
  const check = { intervalMs: 250, rise: 1, fall: 1 };
  front = await startHaproxy(
    renderHaproxy({
      statsSocket: 'placeholder.sock',
      frontend: { port: unusedStratumPort },
      api: { frontend: { port: webPort }, backend: { check } },
    }).replace(/^\s*stats socket placeholder\.sock.*\n/m, ''),
  );
  const runtime = new HaproxyRuntime({ socketPath: front.statsSocket });
  follower = followApiServers({
    redis: pool.redis,
    keys: pool.keys,
    runtime,
    backend: 'api',
    check,
    resyncMs: 250,
    reconcileMs: 250,
  });
  await Promise.all([startApi('api-1'), startApi('api-2')]);
  await waitFor(
    async () => (await runtime.serverStats('api')).filter((s) => s.status.startsWith('UP')).length === 2,
    { timeoutMs: 20_000, what: 'both api instances UP in HAProxy' },
  );
  base = `http://127.0.0.1:${webPort}`;
  const admin = readFileSync(pool.adminTokenFile, 'utf8').trim();
  const create = async (kind: string) => {
    const response = await fetch(`${base}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind, name: `dashboard-${kind}` }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { token: string }).token;
  };
  adminToken = await create('admin');
  readToken = await create('read');
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await follower?.close();
  await Promise.all([...apis.values()].map(killService));
  await front?.stop();
  await pool?.close();
});

describe('dashboard in headless Chromium', () => {
  it('pool page: loads with no console error; hashrate and workers online rise as sim miners mine; a found block appears and changes state', async () => {
    const page = await openPage('/');
    const h = await text(page, `hashrate-5m-${CHAIN}`);
    expect(h).toBe('0 H/s');
    expect(await text(page, `shares-accepted-${CHAIN}`)).toBe('0');
    miners = await pool.startMiners({ tag: 'w', workers: 3, firstAddress: 10, hashesPerSecond: 2000 });
    solo = await pool.startMiners({ tag: 'solo', workers: 1, firstAddress: 20, hashesPerSecond: 2000 });
    await waitFor(async () => (await text(page, `hashrate-5m-${CHAIN}`)) !== '0 H/s', {
      timeoutMs: 60_000,
      what: 'the pool hashrate above 0 on the page',
    });
    // Each of the 3 `w` workers hashes at 667 H/s (the group's 2,000 split), about 6 s a share at
    // this difficulty when it gets its CPU; on a 2-core machine at a load of 30 it may get a tenth
    // of that (the wait timed out at 60 s once so): a generous wait, not a looser check.
    await waitFor(async () => number(await text(page, `workers-${CHAIN}`)) === 4, {
      timeoutMs: 180_000,
      what: '4 workers online on the page',
    });
    // The pool's share counts rise as the miners mine (read again every 5 s), and never run ahead
    // of what the reporters credited.
    const sharesOnPage = async () => number(await text(page, `shares-accepted-${CHAIN}`));
    await waitFor(async () => (await sharesOnPage()) > 0, {
      timeoutMs: 60_000,
      what: 'accepted shares above 0 on the pool page',
    });
    const firstCount = await sharesOnPage();
    await waitFor(async () => (await sharesOnPage()) > firstCount, {
      timeoutMs: 60_000,
      what: 'accepted shares rising on the pool page',
    });
    const shown = await sharesOnPage();
    const credited = (await (await fetch(`${base}/v1/chains/${CHAIN}`)).json()) as {
      shares: Record<string, number>;
    };
    expect(shown).toBeLessThanOrEqual(credited.shares.accepted!);
    for (const kind of ['stale', 'duplicate', 'lowdiff', 'invalid'])
      expect(Number.isInteger(number(await text(page, `shares-${kind}-${CHAIN}`)))).toBe(true);
    // Every accepted share is a block on regtest, so the round closes and restarts: the
    // credited difficulty is not monotonic; the blocks table grows instead.
    await waitFor(async () => (await page.locator('[data-block]').count()) >= 1, {
      timeoutMs: 60_000,
      what: 'a found block on the page',
    });
    // A block the page shows as accepted becomes confirmed as blocks pile on top of it (with
    // every share a block, some are stale or orphaned: those keep their state).
    const accepted = page
      .locator('[data-block]')
      .filter({ has: page.locator('[data-testid="block-state"]', { hasText: /^accepted$/ }) });
    await waitFor(async () => (await accepted.count()) >= 1, {
      timeoutMs: 60_000,
      what: 'an accepted block on the page',
    });
    const hash = await accepted.first().getAttribute('data-block');
    await waitFor(
      async () =>
        (await page.locator(`[data-block="${hash}"] [data-testid="block-state"]`).innerText()) ===
        'confirmed',
      { timeoutMs: 60_000, what: `block ${hash} confirmed on the page` },
    );
    // How to connect: HAProxy's stratum port on the host the page came from.
    expect(await page.locator('.connect dd').first().innerText()).toBe(
      `stratum+tcp://127.0.0.1:${pool.front.port}`,
    );
    await screenshot(page, 'pool');
    expect(await axeViolations(page)).toEqual([]);
    // Opened again now, the pool page's chart starts before it opened: from the stored history
    // (5-minute and hour points), not from its first sample.
    const openedAt = Date.now();
    const again = await openPage('/');
    const chart = again.locator(`[data-testid="chart-${CHAIN}"]`);
    await waitFor(async () => Number((await chart.getAttribute('data-points')) ?? 0) > 25, {
      what: 'the stored history on the reopened pool page chart',
    });
    const firstNonZero = Number(await chart.getAttribute('data-first-non-zero-ms'));
    expect(firstNonZero).toBeGreaterThan(0);
    expect(firstNonZero).toBeLessThan(openedAt);
    await again.close();
    // On a phone: nothing wider than the screen (wide tables scroll inside their own box).
    await page.setViewportSize({ width: 390, height: 844 });
    await waitFor(
      () => page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth),
      { what: 'the pool page fitting a 390 px wide screen' },
    );
    await screenshot(page, 'pool-phone');
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 420_000);

  it('miner page: the account’s workers with counts that rise, sortable, filterable, paginated; one goes offline when its sim miner stops', async () => {
    const openedAt = Date.now();
    const page = await openPage(`/account/${pool.account}`);
    // Its chart starts before the page opened, from the account's stored history.
    const chart = page.locator('[data-testid="account-chart"]');
    await waitFor(async () => Number((await chart.getAttribute('data-points')) ?? 0) > 25, {
      what: 'the stored history on the miner page chart',
    });
    const firstNonZero = Number(await chart.getAttribute('data-first-non-zero-ms'));
    expect(firstNonZero).toBeGreaterThan(0);
    expect(firstNonZero).toBeLessThan(openedAt);
    await waitFor(async () => (await page.locator('[data-worker]').count()) === 4, {
      timeoutMs: 30_000,
      what: 'the 4 workers on the miner page',
    });
    expect(await page.locator('[data-worker] [data-testid="worker-state"]').allInnerTexts()).toEqual([
      'online',
      'online',
      'online',
      'online',
    ]);
    // Filter by name, then sort by name descending from the keyboard.
    await page.getByLabel('Filter by name').fill('solo');
    expect(await page.locator('[data-worker]').count()).toBe(1);
    await page.getByLabel('Filter by name').fill('');
    await page.locator('button[data-sort="name"]').focus();
    // The table renders its rows again on every refresh: the focus stays on the sort button
    // through one (it was rebuilt with the rows, and an Enter pressed after that did nothing).
    await page.evaluate(() => {
      (window as unknown as { shownRow: Element | null }).shownRow = document.querySelector('[data-worker]');
    });
    await waitFor(
      () =>
        page.evaluate(
          () =>
            document.querySelector('[data-worker]') !==
            (window as unknown as { shownRow: Element | null }).shownRow,
        ),
      { timeoutMs: 30_000, what: 'the workers table rendered again by a refresh' },
    );
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-sort') ?? null)).toBe('name');
    await page.keyboard.press('Enter');
    expect(await page.locator('[data-worker]').first().getAttribute('data-worker')).toBe('w2');
    await page.getByLabel('Per page').selectOption('25');
    expect(await page.locator('[data-testid="workers-page"]').innerText()).toBe('Page 1 of 1');

    // The accepted count of a worker rises (the page reads the counters again every 10 s).
    const accepted = async () => number(await page.locator('[data-worker="w0"] td').nth(3).innerText());
    const before = await accepted();
    await waitFor(async () => (await accepted()) > before, {
      timeoutMs: 60_000,
      what: 'w0 accepted count rising',
    });

    // The solo miner stops. A worker goes offline 10 minutes after its last share; the test
    // cannot wait that long, so it ages the worker's last share in the online set as those 10
    // minutes would (the reporter's own sweep then takes it out and emits worker.offline).
    // Aged only once the reporter credited every share solo0 will ever have: a share credited
    // after the ageing (a batch is sealed every second) writes its own time there again, and
    // solo0 stays online for 10 minutes. So it is stopped with no share in flight (checked and
    // stopped in one turn: a stopped miner submits nothing), and its accepted shares are all
    // credited before the ageing.
    let stopped: Promise<void> | undefined;
    await waitFor(
      () => {
        if (solo.miners.shares().some((s) => s.answer === 'pending')) return false;
        stopped = solo.miners.stop();
        return true;
      },
      { intervalMs: 5, what: 'the solo miner with no share in flight' },
    );
    await stopped;
    const member = `${pool.account}.solo0`;
    const soloAccepted = solo.miners.stats().total.accepted;
    await waitFor(
      async () =>
        ((await readWorkers(pool.redis, pool.keys, CHAIN, [member])).get(member)?.accepted ?? 0) >=
        soloAccepted,
      { what: `the ${soloAccepted} shares solo0 saw accepted credited` },
    );
    const online = pool.keys.onlineWorkers(CHAIN);
    expect(await pool.redis.zscore(online, member)).not.toBeNull();
    await pool.redis.zadd(online, 'XX', Date.now() - 11 * 60_000, member);
    await waitFor(
      async () =>
        (await page.locator('[data-worker="solo0"] [data-testid="worker-state"]').innerText()) === 'offline',
      { timeoutMs: 30_000, what: 'solo0 offline on the miner page' },
    );
    expect(await page.locator('[data-worker="w0"] [data-testid="worker-state"]').innerText()).toBe('online');
    await screenshot(page, 'miner');
    expect(await axeViolations(page)).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 180_000);

  it('operator page, admin token: a drain through the page drains that stratum server; the page shows it leave and come back', async () => {
    const page = await openPage('/operator', adminToken);
    const row = (id: string) => page.locator(`[data-service="stratum/${id}"]`);
    await waitFor(async () => (await row('st-2').count()) === 1, { what: 'st-2 on the operator page' });
    const st2 = pool.running.get('st-2')!;
    // By keyboard: focus the button, Enter.
    await page.getByRole('button', { name: 'Drain stratum st-2' }).focus();
    await page.keyboard.press('Enter');
    await waitFor(
      async () => (await page.locator('[data-testid="drain-result"]').innerText()).includes('accepted'),
      {
        what: 'the drain accepted',
      },
    );
    // A keyboard user's focus stays on st-1's drain button while the table is rebuilt on each
    // service event (st-2 draining, down, up again).
    await page.getByRole('button', { name: 'Drain stratum st-1' }).focus();
    const focusedDrain = () =>
      page.evaluate(() => document.activeElement?.getAttribute('data-drain') ?? null);
    // The server really drains: it exits 0 once its miners are sent away and its spool flushed.
    expect((await st2.exited).code).toBe(0);
    await waitFor(async () => (await row('st-2').count()) === 0, {
      timeoutMs: 30_000,
      what: 'st-2 gone from the page',
    });
    expect(await row('st-1').count()).toBe(1);
    await pool.startService('stratum', 'st-2');
    await waitFor(
      async () =>
        (await row('st-2').count()) === 1 &&
        (await row('st-2').locator('[data-testid="service-state"]').innerText()) === 'up',
      { timeoutMs: 30_000, what: 'st-2 back up on the page' },
    );
    expect(await focusedDrain()).toBe('stratum/st-1');
    // HAProxy's api backend (both instances UP) and each stratum server's quarantine (none).
    await waitFor(async () => (await page.locator('[data-haproxy^="api/"]').count()) === 2, {
      what: 'the api backend on the page',
    });
    expect(await page.locator('[data-quarantine="st-1"] td').nth(1).innerText()).toBe('0');
    // The audit trail shows the drain, live.
    await waitFor(async () => (await page.getByRole('cell', { name: 'admin.drain' }).count()) >= 1, {
      what: 'admin.drain in the audit trail',
    });
    await screenshot(page, 'operator-admin');
    expect(await axeViolations(page)).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 120_000);

  it('operator page, read token: services shown, no drain button, no audit trail', async () => {
    const page = await openPage('/operator', readToken);
    await waitFor(async () => (await page.locator('[data-service]').count()) >= 4, {
      what: 'services listed',
    });
    expect(await page.locator('[data-drain]').count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'Audit trail' }).count()).toBe(0);
    expect(await page.locator('[data-testid="access"]').innerText()).toContain('not an admin token');
    await screenshot(page, 'operator-read');
    expect(await axeViolations(page)).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 60_000);

  it('killing the api instance the page is connected to: it reconnects through HAProxy to the other and catches up, no event lost, none doubled', async () => {
    const page = await openPage('/');
    const connections = async (id: string) => {
      const info = await getService(pool.redis, pool.keys, 'api', id);
      const stats = (await (await fetch(`${info!.http}/stats`)).json()) as {
        stream: { connections: number };
      };
      return stats.stream.connections;
    };
    let victim = '';
    await waitFor(
      async () => {
        for (const id of apis.keys()) if ((await connections(id)) > 0) victim = id;
        return victim !== '';
      },
      { what: 'the api instance holding the page’s stream' },
    );
    const survivor = [...apis.keys()].find((id) => id !== victim)!;
    await page.waitForFunction(() => window.hashwireDashboard.events.length > 0, undefined, {
      timeout: 30_000,
    });
    const seenBefore = await page.evaluate(() => window.hashwireDashboard.events.length);
    const chainKey = pool.keys.events(CHAIN);
    const tip = await pool.ltc.rpc[0]!.call<number>('getblockcount', []);
    const killedAt = Date.now();
    await killService(apis.get(victim)!);
    // Blocks mined while the page is away: the job.new they bring is an event it must catch up on.
    const address = await pool.ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
    await pool.ltc.rpc[0]!.call('generatetoaddress', [2, address]);
    let missed = '';
    await waitFor(
      async () => {
        const entries = (await pool.redis.xrevrange(chainKey, '+', '-', 'COUNT', 500)) as [
          string,
          string[],
        ][];
        const job = entries.find(
          ([id, f]) =>
            f[f.indexOf('type') + 1] === 'job.new' &&
            Number(id.split('-')[0]) >= killedAt &&
            (JSON.parse(f[f.indexOf('data') + 1]!) as { height: number }).height > tip,
        );
        if (job) missed = job[0];
        return job !== undefined;
      },
      { timeoutMs: 30_000, what: 'the job.new of the blocks mined while the page was away' },
    );
    await page.waitForFunction(() => window.hashwireDashboard.reconnects >= 1, undefined, {
      timeout: 30_000,
    });
    await page.waitForFunction(() => window.hashwireDashboard.state === 'connected', undefined, {
      timeout: 30_000,
    });
    expect(await connections(survivor)).toBeGreaterThan(0);

    // Every event of the chain stream (all its types are the pool page's topics) from the first
    // the page received to the one it missed and more: each once, in order.
    await page.waitForFunction(
      (wanted: string) => window.hashwireDashboard.events.includes(wanted),
      `${CHAIN}/${missed}`,
      { timeout: 30_000 },
    );
    const seen = (await page.evaluate(() => window.hashwireDashboard.events)) as string[];
    expect(new Set(seen).size).toBe(seen.length);
    const ofChain = seen.filter((e) => e.startsWith(`${CHAIN}/`)).map((e) => e.slice(CHAIN.length + 1));
    const entries = (await pool.redis.xrange(chainKey, ofChain[0]!, ofChain.at(-1)!)) as [string, string[]][];
    expect(ofChain).toEqual(entries.map(([id]) => id));
    expect(seen.length).toBeGreaterThan(seenBefore);
    expect(ofChain).toContain(missed);
    const types = new Set(entries.map(([, fields]) => fields[fields.indexOf('type') + 1]));
    expect(types.has('job.new')).toBe(true);
    await screenshot(page, 'pool-after-reconnect');
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 120_000);
});
