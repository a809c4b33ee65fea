import type { Account, PoolEvent, RestClient, Worker } from '@hashwire/client';
import { hashrateChart } from './chart.js';
import { fill, h, stat, table } from './dom.js';
import { count, diff, hashrate, shortHash } from './format.js';
import { openLive } from './live.js';
import { payoutsSection } from './payouts-section.js';
import { rest } from './session.js';
import { type WorkerRow, workersTable } from './workers-table.js';

const POLL_MS = 10_000;
/** The reporters' online window: a worker with an accepted share this recent is online. */
const ONLINE_WINDOW_MS = 10 * 60_000;

function addressForm(current: string): HTMLFormElement {
  const input = h('input', {
    id: 'address',
    name: 'address',
    required: true,
    autocomplete: 'off',
    spellcheck: 'false',
    value: current,
  });
  return h(
    'form',
    {
      class: 'controls',
      role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        const address = input.value.trim();
        if (address !== '') location.assign(`/account/${encodeURIComponent(address)}`);
      },
    },
    h('label', { for: 'address' }, 'Account address'),
    input,
    h('button', { type: 'submit' }, 'Show'),
  );
}

export async function loadAllWorkers(api: RestClient, chain: string, account: string): Promise<Worker[]> {
  const all: Worker[] = [];
  for await (const w of api.all((page) => api.workers(chain, account, page), 500)) all.push(w);
  return all;
}

export async function minerPage(main: HTMLElement, address: string): Promise<void> {
  fill(main, h('h1', {}, 'Miner'), addressForm(address));
  if (address === '') {
    main.append(h('p', {}, 'Type or paste the payout address you mine with.'));
    return;
  }
  const api = rest();
  const pool = await api.pool();
  const wanted = new URLSearchParams(location.search).get('chain');
  const chain = pool.chains.find((c) => c.chain === wanted) ?? pool.chains[0];
  if (!chain) {
    main.append(h('p', {}, 'This pool has no chain configured.'));
    return;
  }
  const stats = h('dl', { class: 'stats' });
  const chart = hashrateChart(
    `Hashrate of ${address} over time: 5 minute, 1 hour and 24 hour averages`,
    'account-chart',
  );
  const blocks = h('div', { class: 'scroll' });
  const workers = workersTable(address);
  const payouts = payoutsSection(api, chain.chain, address);
  main.append(
    h(
      'section',
      { 'aria-labelledby': 'account-h' },
      h('h2', { id: 'account-h', class: 'mono' }, address, ' ', h('small', {}, `on ${chain.chain}`)),
      stats,
      h('h3', {}, 'Hashrate'),
      chart.element,
      h('h3', {}, 'Workers'),
      workers.element,
      h('h3', {}, 'Blocks this account found'),
      blocks,
      payouts.element,
    ),
  );

  let rows: Worker[] = [];
  /** Online state from worker.online / worker.offline events; it wins over the last share's age. */
  const onlineByEvent = new Map<string, boolean>();
  const publish = () => {
    const now = Date.now();
    workers.setRows(
      rows.map(
        (w): WorkerRow => ({
          ...w,
          online: onlineByEvent.get(w.name) ?? now - w.lastShareMs < ONLINE_WINDOW_MS,
        }),
      ),
    );
  };
  const renderAccount = (a: Account) => {
    fill(
      stats,
      stat('Hashrate, 5 min', hashrate(a.hashrate['5m']), 'account-hashrate'),
      stat('Hashrate, 1 h', hashrate(a.hashrate['1h'])),
      stat('Hashrate, 24 h', hashrate(a.hashrate['24h'])),
      stat('Credited difficulty this round', diff(a.roundDiff), 'account-round-diff'),
      stat('Workers', count(a.workers), 'account-workers'),
    );
    chart.add(Date.now(), a.hashrate);
    fill(
      blocks,
      a.recentBlocks.length === 0
        ? h('p', {}, 'None among the chain’s recent blocks.')
        : table(
            'Blocks found by this account',
            ['Height', 'Hash', 'State', 'Confirmations'],
            a.recentBlocks.map((b) =>
              h(
                'tr',
                {},
                h('td', {}, count(b.height)),
                h('td', { class: 'mono', title: b.hash }, shortHash(b.hash)),
                h('td', {}, h('span', { class: `badge state-${b.state}` }, b.state)),
                h('td', {}, b.confirmations === null ? '–' : String(b.confirmations)),
              ),
            ),
          ),
    );
  };
  const refresh = async () => {
    const [account, list] = await Promise.all([
      api.account(chain.chain, address),
      loadAllWorkers(api, chain.chain, address),
    ]);
    renderAccount(account);
    rows = list;
    publish();
    await payouts.refresh();
  };
  await refresh();
  // The stored history under the chart's samples (after the first paint, not before it).
  void api.history(chain.chain, { account: address }).then(
    (history) => chart.history(history),
    () => {},
  );
  setInterval(() => void refresh().catch(() => {}), POLL_MS);

  const workerName = (full: string) => (full === address ? '' : full.slice(address.length + 1));
  openLive([`account:${chain.chain}:${address}`], {
    snapshot(state) {
      const account = state[`account:${chain.chain}:${address}`] as Account | undefined;
      if (account) renderAccount(account);
    },
    event(event: PoolEvent) {
      const data = event.data as { worker?: string };
      if (
        (event.type === 'worker.online' || event.type === 'worker.offline') &&
        typeof data.worker === 'string'
      ) {
        const name = workerName(data.worker);
        onlineByEvent.set(name, event.type === 'worker.online');
        if (!rows.some((w) => w.name === name)) void refresh().catch(() => {});
        else publish();
      } else void refresh().catch(() => {});
    },
  });
}
