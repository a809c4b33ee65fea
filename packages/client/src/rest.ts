import type {
  Account,
  Balance,
  Block,
  CurrentRound,
  Earning,
  HashrateHistory,
  Page,
  PageOptions,
  Payment,
  Pool,
  PoolChain,
  Service,
  Worker,
} from './types.js';

/** An answer of the API other than 2xx: its `{ error: { code, message, field, in } }`. */
export class HashwireApiError extends Error {
  override readonly name = 'HashwireApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The input that was wrong (`limit`, `account`, `token`…), when one was. */
    readonly field?: string,
    readonly place?: string,
  ) {
    super(message);
  }
}

export interface RestClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
}

export interface RestClient {
  pool(): Promise<Pool>;
  chain(chain: string): Promise<PoolChain>;
  account(chain: string, account: string): Promise<Account>;
  workers(chain: string, account: string, page?: PageOptions): Promise<Page<Worker> & { total: number }>;
  /** The account's balance, what it was paid and what is being paid now. */
  balance(chain: string, account: string): Promise<Balance>;
  /** Its payments with their txids, newest first. */
  payments(chain: string, account: string, page?: PageOptions): Promise<Page<Payment>>;
  /** What each matured block credited to it, newest first. */
  earnings(chain: string, account: string, page?: PageOptions): Promise<Page<Earning>>;
  blocks(chain: string, page?: PageOptions): Promise<Page<Block>>;
  block(chain: string, hash: string): Promise<Block>;
  rounds(chain: string, page?: PageOptions): Promise<Page<Block>>;
  currentRound(chain: string): Promise<CurrentRound>;
  /** The chain's stored hashrate history, or an account's (`account` given); `since` (epoch ms) keeps the points starting at or after it. */
  history(chain: string, options?: { account?: string; since?: number }): Promise<HashrateHistory>;
  services(): Promise<{ services: Service[] }>;
  /** Every item of a paginated list, page by page. */
  all<T>(list: (page: PageOptions) => Promise<Page<T>>, limit?: number): AsyncGenerator<T>;
  /** Any other call (tokens, watches, drain): the JSON answer, or a HashwireApiError. */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

const seg = encodeURIComponent;

function query(page: PageOptions | undefined): string {
  const params = new URLSearchParams();
  if (page?.limit !== undefined) params.set('limit', String(page.limit));
  if (page?.cursor !== undefined) params.set('cursor', page.cursor);
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

export function createRestClient(options: RestClientOptions): RestClient {
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);

  async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await doFetch(`${base}${path}`, {
      method,
      headers,
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: unknown = null;
    if (text !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
    }
    if (!res.ok) {
      const error = (json as { error?: { code?: string; message?: string; field?: string; in?: string } })
        ?.error;
      throw new HashwireApiError(
        res.status,
        error?.code ?? 'http_error',
        error?.message ?? `${method} ${path}: HTTP ${res.status}`,
        error?.field,
        error?.in,
      );
    }
    return json as T;
  }

  const chainPath = (chain: string) => `/v1/chains/${seg(chain)}`;
  return {
    pool: () => request('GET', '/v1/pool'),
    chain: (chain) => request('GET', chainPath(chain)),
    account: (chain, account) => request('GET', `${chainPath(chain)}/accounts/${seg(account)}`),
    workers: (chain, account, page) =>
      request('GET', `${chainPath(chain)}/accounts/${seg(account)}/workers${query(page)}`),
    balance: (chain, account) => request('GET', `${chainPath(chain)}/accounts/${seg(account)}/balance`),
    payments: (chain, account, page) =>
      request('GET', `${chainPath(chain)}/accounts/${seg(account)}/payments${query(page)}`),
    earnings: (chain, account, page) =>
      request('GET', `${chainPath(chain)}/accounts/${seg(account)}/earnings${query(page)}`),
    blocks: (chain, page) => request('GET', `${chainPath(chain)}/blocks${query(page)}`),
    block: (chain, hash) => request('GET', `${chainPath(chain)}/blocks/${seg(hash)}`),
    rounds: (chain, page) => request('GET', `${chainPath(chain)}/rounds${query(page)}`),
    currentRound: (chain) => request('GET', `${chainPath(chain)}/rounds/current`),
    history: (chain, options = {}) =>
      request(
        'GET',
        `${chainPath(chain)}${options.account === undefined ? '' : `/accounts/${seg(options.account)}`}/hashrate/history${
          options.since === undefined ? '' : `?since=${options.since}`
        }`,
      ),
    services: () => request('GET', '/v1/services'),
    async *all(list, limit) {
      let cursor: string | undefined;
      do {
        const page = await list({
          ...(limit !== undefined && { limit }),
          ...(cursor !== undefined && { cursor }),
        });
        yield* page.items;
        cursor = page.next ?? undefined;
      } while (cursor !== undefined);
    },
    request,
  };
}
