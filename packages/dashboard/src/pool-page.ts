import type { Block, PoolChain, PoolEvent, Service } from '@hashwire/client';
import { type HashrateChart, hashrateChart } from './chart.js';
import { fill, h, stat, table } from './dom.js';
import { ago, count, diff, hashrate, percent, shortHash } from './format.js';
import { openLive } from './live.js';
import { rest } from './session.js';

const POLL_MS = 5_000;

interface ChainView {
  chain: PoolChain;
  blocks: Map<string, Block>;
  chart: HashrateChart;
  stats: HTMLElement;
  /** The chain's shares by result, pool-wide. */
  shares: HTMLElement;
  blocksHolder: HTMLElement;
}

/** Fields of a `block.*` event payload, laid over the block as the REST read shows it. */
function blockFromEvent(data: Record<string, unknown>, previous: Block | undefined): Block {
  const account = typeof data.account === 'string' ? data.account : null;
  const round = data.round as
    | { accounts: number; totalDiff: number; closedAt: number; returned?: boolean }
    | undefined;
  return {
    hash: String(data.hash),
    chain: String(data.chain),
    height: Number(data.height),
    state: data.state as Block['state'],
    confirmations:
      typeof data.confirmations === 'number' ? data.confirmations : (previous?.confirmations ?? null),
    finder: account
      ? { account, worker: String(data.worker ?? ''), shareId: String(data.shareId ?? '') }
      : (previous?.finder ?? null),
    submittedAt: typeof data.submittedAt === 'number' ? data.submittedAt : (previous?.submittedAt ?? null),
    updatedAt: typeof data.updatedAt === 'number' ? data.updatedAt : Date.now(),
    reason: typeof data.reason === 'string' ? data.reason : (previous?.reason ?? null),
    round: round
      ? {
          accounts: round.accounts,
          totalDiff: round.totalDiff,
          closedAt: round.closedAt,
          returned: round.returned === true,
        }
      : (previous?.round ?? null),
  };
}

function renderStats(view: ChainView): void {
  const c = view.chain;
  const effort = c.network && c.network.difficulty > 0 ? c.round.totalDiff / c.network.difficulty : null;
  fill(
    view.stats,
    stat('Hashrate, 5 min', hashrate(c.hashrate['5m']), `hashrate-5m-${c.chain}`),
    stat('Hashrate, 1 h', hashrate(c.hashrate['1h'])),
    stat('Hashrate, 24 h', hashrate(c.hashrate['24h'])),
    stat('Miners online', count(c.minersOnline), `miners-${c.chain}`),
    stat('Workers online', count(c.workersOnline), `workers-${c.chain}`),
    stat('Network height', c.network ? count(c.network.height) : '–'),
    stat('Network difficulty', c.network ? diff(c.network.difficulty) : '–'),
    stat('Round: credited difficulty', diff(c.round.totalDiff), `round-diff-${c.chain}`),
    stat('Round: accounts', count(c.round.accounts)),
    stat('Round: effort so far', effort === null ? '–' : percent(effort), `effort-${c.chain}`),
  );
  const shares = c.shares;
  fill(
    view.shares,
    stat('Accepted', count(shares.accepted), `shares-accepted-${c.chain}`),
    stat('Stale', count(shares.stale), `shares-stale-${c.chain}`),
    stat('Duplicate', count(shares.duplicate), `shares-duplicate-${c.chain}`),
    stat('Low difficulty', count(shares.lowdiff), `shares-lowdiff-${c.chain}`),
    stat('Invalid', count(shares.invalid), `shares-invalid-${c.chain}`),
  );
}

function renderBlocks(view: ChainView): void {
  const blocks = [...view.blocks.values()]
    .sort((a, b) => b.height - a.height || b.updatedAt - a.updatedAt)
    .slice(0, 50);
  if (blocks.length === 0) {
    fill(view.blocksHolder, h('p', {}, 'No block found yet.'));
    return;
  }
  fill(
    view.blocksHolder,
    table(
      `Blocks found on ${view.chain.chain}`,
      ['Height', 'Hash', 'State', 'Confirmations', 'Finder', 'Updated'],
      blocks.map((b) =>
        h(
          'tr',
          { 'data-block': b.hash },
          h('td', {}, count(b.height)),
          h('td', { class: 'mono', title: b.hash }, shortHash(b.hash)),
          h('td', {}, h('span', { class: `badge state-${b.state}`, 'data-testid': 'block-state' }, b.state)),
          h('td', {}, b.confirmations === null ? '–' : String(b.confirmations)),
          h(
            'td',
            { class: 'mono' },
            b.finder ? `${b.finder.account}${b.finder.worker ? `.${b.finder.worker}` : ''}` : '–',
          ),
          h('td', {}, ago(b.updatedAt)),
        ),
      ),
    ),
  );
}

interface StratumFront {
  chain: string;
  scheme: string;
  host: string | null;
  port: number;
}

/**
 * The addresses miners should use: HAProxy's public ones (`GET /v1/connect`; a wildcard host is
 * the host this page came from), or, when the api knows none, each stratum server in discovery.
 */
function stratumUrls(fronts: StratumFront[], services: Service[]): string[] {
  if (fronts.length > 0) return fronts.map((f) => `${f.scheme}://${f.host ?? location.hostname}:${f.port}`);
  return services
    .filter((s) => s.kind === 'stratum' && s.state === 'up' && s.endpoints.stratum)
    .map((s) => `stratum+tcp://${s.endpoints.stratum!.replace(/^[a-z+]+:\/\//, '')}`);
}

function connectSection(urls: string[]): HTMLElement {
  return h(
    'section',
    { 'aria-labelledby': 'connect-h' },
    h('h2', { id: 'connect-h' }, 'How to connect'),
    h(
      'dl',
      { class: 'connect' },
      h('dt', {}, 'Stratum URL'),
      h(
        'dd',
        { class: 'mono' },
        urls.length > 0 ? [...new Set(urls)].join(', ') : 'no stratum server is up right now',
      ),
      h('dt', {}, 'Username'),
      h(
        'dd',
        {},
        h('code', {}, 'address.worker'),
        ' (your payout address, a dot, any name for the rig; the address alone works too)',
      ),
      h('dt', {}, 'Password'),
      h(
        'dd',
        {},
        h('code', {}, 'x'),
        ' for the pool’s difficulty, or ',
        h('code', {}, 'd=<difficulty>'),
        ' to ask for a fixed starting difficulty (e.g. ',
        h('code', {}, 'd=0.5'),
        ')',
      ),
    ),
  );
}

export async function poolPage(main: HTMLElement): Promise<void> {
  const api = rest();
  const [pool, { services }, { fronts }] = await Promise.all([
    api.pool(),
    api.services(),
    api.request<{ fronts: StratumFront[] }>('GET', '/v1/connect'),
  ]);
  const views = new Map<string, ChainView>();
  const connect = h('div', {});
  fill(main, h('h1', {}, 'Pool'));
  for (const chain of pool.chains) {
    const view: ChainView = {
      chain,
      blocks: new Map(),
      chart: hashrateChart(
        `Hashrate of ${chain.chain} over time: 5 minute, 1 hour and 24 hour averages`,
        `chart-${chain.chain}`,
      ),
      stats: h('dl', { class: 'stats' }),
      shares: h('dl', { class: 'stats' }),
      blocksHolder: h('div', { class: 'scroll' }),
    };
    views.set(chain.chain, view);
    main.append(
      h(
        'section',
        { 'aria-labelledby': `chain-${chain.chain}` },
        h('h2', { id: `chain-${chain.chain}` }, `${chain.chain} `, h('small', {}, chain.algorithm)),
        view.stats,
        h('h3', {}, 'Shares since the pool began counting'),
        view.shares,
        h('h3', {}, 'Hashrate'),
        view.chart.element,
        h('h3', {}, 'Blocks'),
        view.blocksHolder,
      ),
    );
    renderStats(view);
    renderBlocks(view);
    view.chart.add(Date.now(), chain.hashrate);
  }
  main.append(connect);
  // The stored history under the chart's samples: read beside the first paint, not before it.
  const loadHistory = () => {
    for (const view of views.values())
      void api.history(view.chain.chain).then(
        (history) => view.chart.history(history),
        () => {},
      );
  };
  loadHistory();
  fill(connect, connectSection(stratumUrls(fronts, services)));

  const refreshChains = async () => {
    const fresh = await api.pool();
    for (const chain of fresh.chains) {
      const view = views.get(chain.chain);
      if (!view) continue;
      view.chain = chain;
      renderStats(view);
      view.chart.add(Date.now(), chain.hashrate);
    }
  };
  // Shares are not events (too many): the figures they move are read again every few seconds.
  setInterval(() => void refreshChains().catch(() => {}), POLL_MS);

  const topics = [
    'pool',
    'services',
    'worker.*',
    ...pool.chains.flatMap((c) => [`chain:${c.chain}`, `blocks:${c.chain}`]),
  ];
  let snapshots = 0;
  openLive(topics, {
    snapshot(state) {
      // A new snapshot (the stream forgot the page's position, after a long disconnection): the
      // history again, for the gap the samples have.
      if (snapshots++ > 0) loadHistory();
      for (const [topic, value] of Object.entries(state)) {
        if (topic.startsWith('blocks:')) {
          const view = views.get(topic.slice('blocks:'.length));
          if (!view) continue;
          view.blocks.clear();
          for (const b of (value as { items: Block[] }).items) view.blocks.set(b.hash, b);
          renderBlocks(view);
        } else if (topic === 'services')
          fill(connect, connectSection(stratumUrls(fronts, (value as { services: Service[] }).services)));
      }
    },
    event(event: PoolEvent) {
      const data = event.data as unknown as Record<string, unknown>;
      if (event.type.startsWith('block.')) {
        const view = views.get(String(data.chain));
        if (!view) return;
        const hash = String(data.hash);
        view.blocks.set(hash, blockFromEvent(data, view.blocks.get(hash)));
        renderBlocks(view);
        void refreshChains().catch(() => {});
      } else if (event.type === 'round.closed' || event.type.startsWith('worker.')) {
        void refreshChains().catch(() => {});
      } else if (event.type.startsWith('service.')) {
        void api.services().then(
          ({ services: s }) => fill(connect, connectSection(stratumUrls(fronts, s))),
          () => {},
        );
      }
    },
  });
}
