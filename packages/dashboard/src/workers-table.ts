import type { Worker } from '@hashwire/client';
import { fill, h } from './dom.js';
import { ago, count, diff, hashrate } from './format.js';

/** A worker row as the miner page keeps it: the REST counters plus its online state from events. */
export interface WorkerRow extends Worker {
  online: boolean;
}

export type SortKey =
  | 'name'
  | 'online'
  | 'lastShareMs'
  | 'hashrate'
  | 'accepted'
  | 'stale'
  | 'rejected'
  | 'acceptedDiff';

const COLUMNS: { key: SortKey; label: string }[] = [
  { key: 'name', label: 'Worker' },
  { key: 'online', label: 'State' },
  { key: 'lastShareMs', label: 'Last share' },
  { key: 'hashrate', label: 'Hashrate (5 min)' },
  { key: 'accepted', label: 'Accepted' },
  { key: 'stale', label: 'Stale' },
  { key: 'rejected', label: 'Rejected' },
  { key: 'acceptedDiff', label: 'Credited difficulty' },
];

const PAGE_SIZES = [25, 50, 100, 250];

function sortValue(w: WorkerRow, key: SortKey): number | string {
  switch (key) {
    case 'name':
      return w.name;
    case 'online':
      return w.online ? 1 : 0;
    case 'hashrate':
      return w.hashrate['5m'];
    default:
      return w[key];
  }
}

export interface TableState {
  sort: SortKey;
  descending: boolean;
  filter: string;
  show: 'all' | 'online' | 'offline';
  page: number;
  pageSize: number;
}

/** The rows the table shows: filtered, sorted, one page. Pure, so it is measured on its own. */
export function visibleRows(
  rows: WorkerRow[],
  s: TableState,
): { items: WorkerRow[]; matching: number; pages: number } {
  const needle = s.filter.trim().toLowerCase();
  const matching = rows.filter(
    (w) =>
      (needle === '' || w.name.toLowerCase().includes(needle)) &&
      (s.show === 'all' || (s.show === 'online') === w.online),
  );
  const dir = s.descending ? -1 : 1;
  matching.sort((a, b) => {
    const x = sortValue(a, s.sort);
    const y = sortValue(b, s.sort);
    if (x < y) return -dir;
    if (x > y) return dir;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  const pages = Math.max(1, Math.ceil(matching.length / s.pageSize));
  const page = Math.min(s.page, pages - 1);
  return {
    items: matching.slice(page * s.pageSize, (page + 1) * s.pageSize),
    matching: matching.length,
    pages,
  };
}

export interface WorkersTable {
  readonly element: HTMLElement;
  setRows(rows: WorkerRow[]): void;
}

export function workersTable(account: string): WorkersTable {
  const state: TableState = {
    sort: 'name',
    descending: false,
    filter: '',
    show: 'all',
    page: 0,
    pageSize: 50,
  };
  let rows: WorkerRow[] = [];
  const body = h('tbody');
  const head = h('tr');
  const summary = h('p', { role: 'status', 'aria-live': 'polite', 'data-testid': 'workers-summary' });
  const pageLabel = h('span', { 'data-testid': 'workers-page' });
  const prev = h('button', { type: 'button', onclick: () => go(state.page - 1) }, 'Previous page');
  const next = h('button', { type: 'button', onclick: () => go(state.page + 1) }, 'Next page');

  const go = (page: number) => {
    state.page = Math.max(0, page);
    render();
  };

  const filterInput = h('input', {
    id: 'worker-filter',
    type: 'search',
    autocomplete: 'off',
    oninput: (e) => {
      state.filter = (e.target as HTMLInputElement).value;
      go(0);
    },
  });
  const showSelect = h(
    'select',
    {
      id: 'worker-show',
      onchange: (e) => {
        state.show = (e.target as HTMLSelectElement).value as TableState['show'];
        go(0);
      },
    },
    h('option', { value: 'all' }, 'All'),
    h('option', { value: 'online' }, 'Online'),
    h('option', { value: 'offline' }, 'Offline'),
  );
  const sizeSelect = h(
    'select',
    {
      id: 'worker-page-size',
      onchange: (e) => {
        state.pageSize = Number((e.target as HTMLSelectElement).value);
        go(0);
      },
    },
    PAGE_SIZES.map((n) => h('option', { value: n, selected: n === state.pageSize }, String(n))),
  );

  // The header is built once and only its sort state changes on a render: the rows are rendered
  // again on every refresh (every 10 s) and event, and a sort button rebuilt then would take the
  // keyboard focus with it (a user tabbing to a column and pressing Enter saw nothing happen).
  const sortHeads = COLUMNS.map(({ key, label }) => {
    const mark = h('span', { 'aria-hidden': 'true' });
    const th = h(
      'th',
      { scope: 'col' },
      h(
        'button',
        {
          type: 'button',
          class: 'sort',
          'data-sort': key,
          onclick: () => {
            if (state.sort === key) state.descending = !state.descending;
            else {
              state.sort = key;
              state.descending = key !== 'name';
            }
            go(0);
          },
        },
        label,
        mark,
      ),
    );
    return { key, th, mark };
  });
  fill(
    head,
    sortHeads.map((c) => c.th),
  );

  function renderHead(): void {
    for (const { key, th, mark } of sortHeads) {
      const active = state.sort === key;
      th.setAttribute('aria-sort', active ? (state.descending ? 'descending' : 'ascending') : 'none');
      mark.textContent = active ? (state.descending ? ' ▼' : ' ▲') : '';
    }
  }

  function render(): void {
    const view = visibleRows(rows, state);
    state.page = Math.min(state.page, view.pages - 1);
    renderHead();
    const now = Date.now();
    body.replaceChildren(
      ...view.items.map((w) =>
        h(
          'tr',
          { 'data-worker': w.name },
          h('th', { scope: 'row', class: 'mono' }, w.name === '' ? `${account} (no worker name)` : w.name),
          h(
            'td',
            {},
            h(
              'span',
              { class: `badge ${w.online ? 'online' : 'offline'}`, 'data-testid': 'worker-state' },
              w.online ? 'online' : 'offline',
            ),
          ),
          h('td', {}, ago(w.lastShareMs, now)),
          h('td', {}, hashrate(w.hashrate['5m'])),
          h('td', {}, count(w.accepted)),
          h('td', {}, count(w.stale)),
          h(
            'td',
            { title: `duplicate ${w.duplicate}, low difficulty ${w.lowdiff}, invalid ${w.invalid}` },
            count(w.rejected),
          ),
          h('td', {}, diff(w.acceptedDiff)),
        ),
      ),
    );
    const online = rows.reduce((n, w) => n + (w.online ? 1 : 0), 0);
    summary.textContent = `${count(rows.length)} workers, ${count(online)} online; ${count(view.matching)} match.`;
    pageLabel.textContent = `Page ${state.page + 1} of ${view.pages}`;
    prev.disabled = state.page === 0;
    next.disabled = state.page >= view.pages - 1;
  }

  const element = h(
    'div',
    {},
    h(
      'div',
      { class: 'controls' },
      h('label', { for: 'worker-filter' }, 'Filter by name'),
      filterInput,
      h('label', { for: 'worker-show' }, 'Show'),
      showSelect,
      h('label', { for: 'worker-page-size' }, 'Per page'),
      sizeSelect,
    ),
    summary,
    h('div', { class: 'scroll' }, h('table', {}, h('caption', {}, 'Workers'), h('thead', {}, head), body)),
    h('nav', { class: 'pager', 'aria-label': 'Worker pages' }, prev, pageLabel, next),
  );
  render();
  return {
    element,
    setRows(next) {
      rows = next;
      render();
    },
  };
}
