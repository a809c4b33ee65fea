import { HashwireApiError, type PoolEvent, type Service } from '@hashwire/client';
import { fill, h, table } from './dom.js';
import { ago, time } from './format.js';
import { openLive } from './live.js';
import { rest, setToken, token } from './session.js';

interface AuditEvent {
  seq: string;
  ts: number;
  type: string;
  actor: { tokenId: string; name?: string; kind: string } | null;
  target: string | null;
  data: Record<string, unknown>;
}

interface HaproxyServer {
  backend: string;
  name: string;
  status: string;
  sessions: number;
  weight: number;
}
interface Quarantine {
  id: string;
  chain: string;
  quarantine: { subBatches: number; shares: number } | null;
}

/** HAProxy and the quarantines are not events: read again this often. */
const POLL_MS = 5_000;

type Access = 'admin' | 'other' | 'public' | 'refused';

function tokenForm(message: HTMLElement): HTMLFormElement {
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  return h(
    'form',
    {
      class: 'controls',
      onsubmit: (e) => {
        e.preventDefault();
        setToken(input.value.trim());
        location.reload();
      },
    },
    h('label', { for: 'token' }, 'API token'),
    input,
    h('button', { type: 'submit' }, 'Use token'),
    token() !== null &&
      h(
        'button',
        {
          type: 'button',
          onclick: () => {
            setToken(null);
            location.reload();
          },
        },
        'Forget token',
      ),
    message,
  );
}

export async function operatorPage(main: HTMLElement): Promise<void> {
  const api = rest();
  const who = h('p', { 'data-testid': 'access' });
  fill(main, h('h1', {}, 'Operator'), tokenForm(who));
  let access: Access = 'public';
  let audit: AuditEvent[] = [];
  if (token() !== null) {
    try {
      const me = await api.request<{ kind: string }>('GET', '/v1/whoami');
      access = me.kind === 'admin' ? 'admin' : 'other';
    } catch (error) {
      if (!(error instanceof HashwireApiError) || error.status !== 401) throw error;
      access = 'refused';
    }
    if (access === 'admin')
      audit = (await api.request<{ items: AuditEvent[] }>('GET', '/v1/audit?limit=50')).items;
  }
  who.textContent = {
    admin: 'Signed in with an admin token: drain buttons and the audit trail are shown.',
    other: 'This token is not an admin token: services are shown read-only.',
    public:
      'No token: services are shown read-only. An admin token shows the drain buttons and the audit trail.',
    refused: 'This token was refused (unknown, expired or revoked): services are shown read-only.',
  }[access];
  if (access === 'refused') setToken(null);

  const result = h('p', { role: 'status', 'aria-live': 'polite', 'data-testid': 'drain-result' });
  const servicesHolder = h('div', { class: 'scroll' });
  const auditHolder = h('div', { class: 'scroll' });
  main.append(
    h(
      'section',
      { 'aria-labelledby': 'services-h' },
      h('h2', { id: 'services-h' }, 'Services'),
      result,
      servicesHolder,
    ),
  );
  const haproxyHolder = h('div', { class: 'scroll' });
  const quarantineHolder = h('div', { class: 'scroll' });
  if (access === 'admin')
    main.append(
      h(
        'section',
        { 'aria-labelledby': 'haproxy-h' },
        h('h2', { id: 'haproxy-h' }, 'HAProxy'),
        haproxyHolder,
      ),
      h(
        'section',
        { 'aria-labelledby': 'quarantine-h' },
        h('h2', { id: 'quarantine-h' }, 'Quarantined share batches'),
        quarantineHolder,
      ),
      h('section', { 'aria-labelledby': 'audit-h' }, h('h2', { id: 'audit-h' }, 'Audit trail'), auditHolder),
    );

  const renderHaproxy = async () => {
    let servers: HaproxyServer[];
    try {
      servers = (await api.request<{ servers: HaproxyServer[] }>('GET', '/v1/haproxy')).servers;
    } catch (error) {
      fill(haproxyHolder, h('p', {}, (error as Error).message));
      return;
    }
    fill(
      haproxyHolder,
      servers.length === 0
        ? h('p', {}, 'HAProxy has no server in any backend.')
        : table(
            'HAProxy servers by backend',
            ['Backend', 'Server', 'Status', 'Weight', 'Connections'],
            servers.map((s) =>
              h(
                'tr',
                { 'data-haproxy': `${s.backend}/${s.name}` },
                h('td', {}, s.backend),
                h('th', { scope: 'row', class: 'mono' }, s.name),
                h(
                  'td',
                  {},
                  h('span', { class: `badge ${s.status.startsWith('UP') ? 'up' : 'draining'}` }, s.status),
                ),
                h('td', {}, String(s.weight)),
                h('td', {}, String(s.sessions)),
              ),
            ),
          ),
    );
  };
  const renderQuarantine = async () => {
    let servers: Quarantine[];
    try {
      servers = (await api.request<{ servers: Quarantine[] }>('GET', '/v1/quarantine')).servers;
    } catch (error) {
      fill(quarantineHolder, h('p', {}, (error as Error).message));
      return;
    }
    fill(
      quarantineHolder,
      servers.length === 0
        ? h('p', {}, 'No stratum server is in discovery.')
        : table(
            'Share sub-batches each stratum server holds in quarantine',
            ['Stratum server', 'Chain', 'Sub-batches', 'Shares'],
            servers.map((s) =>
              h(
                'tr',
                { 'data-quarantine': s.id },
                h('th', { scope: 'row', class: 'mono' }, s.id),
                h('td', {}, s.chain || '–'),
                h('td', {}, s.quarantine ? String(s.quarantine.subBatches) : 'unknown (no answer)'),
                h('td', {}, s.quarantine ? String(s.quarantine.shares) : '–'),
              ),
            ),
          ),
    );
  };
  if (access === 'admin') {
    await Promise.all([renderHaproxy(), renderQuarantine()]);
    setInterval(() => void Promise.all([renderHaproxy(), renderQuarantine()]), POLL_MS);
  }

  const drain = async (s: Service, button: HTMLButtonElement) => {
    button.disabled = true;
    result.textContent = `Draining ${s.kind} ${s.id}…`;
    try {
      await api.request(
        'POST',
        `/v1/services/${encodeURIComponent(s.kind)}/${encodeURIComponent(s.id)}/drain`,
      );
      result.textContent = `${s.kind} ${s.id} accepted the drain.`;
    } catch (error) {
      button.disabled = false;
      result.textContent = `Drain of ${s.kind} ${s.id} failed: ${(error as Error).message}`;
    }
  };

  const renderServices = (services: Service[]) => {
    const now = Date.now();
    const sorted = [...services].sort((a, b) => a.kind.localeCompare(b.kind) || a.id.localeCompare(b.id));
    // The table is rebuilt on every service event: a keyboard user's focus on a drain button
    // goes to that service's new button, not to the page's top.
    const active = document.activeElement;
    const focused = active && servicesHolder.contains(active) ? active.getAttribute('data-drain') : null;
    fill(
      servicesHolder,
      sorted.length === 0
        ? h('p', {}, 'No service is in discovery.')
        : table(
            'Services in discovery',
            [
              'Kind',
              'Id',
              'Chain',
              'State',
              'Load',
              'Version',
              'Up since',
              ...(access === 'admin' ? ['Action'] : []),
            ],
            sorted.map((s) => {
              const button = h(
                'button',
                { type: 'button', 'data-drain': `${s.kind}/${s.id}` },
                `Drain ${s.kind} ${s.id}`,
              );
              button.addEventListener('click', () => void drain(s, button));
              button.disabled = s.state !== 'up';
              return h(
                'tr',
                { 'data-service': `${s.kind}/${s.id}` },
                h('td', {}, s.kind),
                h('th', { scope: 'row', class: 'mono' }, s.id),
                h('td', {}, s.chain || '–'),
                h(
                  'td',
                  {},
                  h('span', { class: `badge ${s.state}`, 'data-testid': 'service-state' }, s.state),
                ),
                h('td', { title: JSON.stringify(s.loadFigures) }, s.load.toFixed(2)),
                h('td', { class: 'mono' }, s.version),
                h('td', { title: time(s.startedAt) }, ago(s.startedAt, now)),
                access === 'admin' && h('td', {}, button),
              );
            }),
          ),
    );
    if (focused !== null)
      servicesHolder.querySelector<HTMLButtonElement>(`[data-drain="${CSS.escape(focused)}"]`)?.focus();
  };
  const renderAudit = () =>
    fill(
      auditHolder,
      audit.length === 0
        ? h('p', {}, 'No admin action yet.')
        : table(
            'Admin actions, newest first',
            ['When', 'Action', 'By', 'Target', 'Outcome'],
            audit
              .slice(0, 200)
              .map((e) =>
                h(
                  'tr',
                  {},
                  h('td', {}, time(e.ts)),
                  h('td', {}, e.type),
                  h('td', {}, e.actor ? (e.actor.name ?? e.actor.tokenId) : '–'),
                  h('td', { class: 'mono' }, e.target ?? '–'),
                  h('td', {}, typeof e.data.outcome === 'string' ? e.data.outcome : ''),
                ),
              ),
          ),
    );

  // A service emits `down` before it leaves discovery, so a read made on that event can still
  // list it: services a `down` named stay off the page until their next `up`. And reads made on
  // successive events can answer out of order: an answer older than one shown is dropped.
  const gone = new Set<string>();
  let listed: Service[] = [];
  const showServices = (services: Service[]) => {
    listed = services;
    renderServices(services.filter((s) => !gone.has(`${s.kind}/${s.id}`)));
  };
  let asked = 0;
  let shown = 0;
  const refreshServices = () => {
    const mine = ++asked;
    void api.services().then(
      ({ services }) => {
        if (mine < shown) return;
        shown = mine;
        showServices(services);
      },
      () => {},
    );
  };
  showServices((await api.services()).services);
  if (access === 'admin') renderAudit();
  openLive(access === 'admin' ? ['services', 'admin.*'] : ['services'], {
    snapshot(state) {
      const value = state.services as { services: Service[] } | undefined;
      if (value) {
        // A fresh subscription (the first, or after the stream forgot the page's position): its
        // list is the truth from here on, and the events that follow it keep it so.
        gone.clear();
        showServices(value.services);
      }
    },
    event(event: PoolEvent) {
      if (event.type.startsWith('service.')) {
        const data = event.data as { kind?: unknown; id?: unknown };
        const key = `${String(data.kind)}/${String(data.id)}`;
        if (event.type.endsWith('.down')) gone.add(key);
        else if (event.type.endsWith('.up')) gone.delete(key);
        showServices(listed);
        refreshServices();
      } else if (event.type.startsWith('admin.')) {
        const data = event.data as Record<string, unknown>;
        audit.unshift({
          seq: event.seq,
          ts: event.ts,
          type: event.type,
          actor: (data.actor as AuditEvent['actor']) ?? null,
          target: typeof data.target === 'string' ? data.target : null,
          data,
        });
        renderAudit();
      }
    },
  });
}
