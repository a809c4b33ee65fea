import type { Balance, Earning, Payment, RestClient } from '@hashwire/client';
import { fill, h, stat, table } from './dom.js';
import { count, shortHash, time } from './format.js';

/** Rows shown of each list: the newest; the API pages further. */
const ROWS = 10;

/** Satoshis (an integer string) as coins with 8 decimals, exactly: no floating point on money. */
export function coins(sat: string): string {
  const value = BigInt(sat);
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const text = `${abs / 100_000_000n}.${(abs % 100_000_000n).toString().padStart(8, '0')}`;
  return negative ? `-${text}` : text;
}

/**
 * The miner page's "Payouts" part: the account's balance, what it was paid (with the txids) and
 * what each matured block credited it (`GET …/balance`, `…/payments`, `…/earnings`).
 */
export function payoutsSection(
  api: RestClient,
  chain: string,
  account: string,
): { element: HTMLElement; refresh(): Promise<void> } {
  const stats = h('dl', { class: 'stats' });
  // Outside the <dl>: a definition list may hold only its terms and definitions.
  const note = h('p', {});
  const payments = h('div', { class: 'scroll' });
  const earnings = h('div', { class: 'scroll' });
  const element = h(
    'section',
    { 'aria-labelledby': 'payouts-h' },
    h('h3', { id: 'payouts-h' }, 'Payouts'),
    note,
    stats,
    h('h4', {}, 'Payments'),
    payments,
    h('h4', {}, 'Earnings per block'),
    earnings,
  );
  const render = (balance: Balance, paid: Payment[], earned: Earning[]) => {
    if (!balance.payments) {
      fill(note, `The pool pays nobody on ${chain}.`);
      fill(stats);
      fill(payments);
      fill(earnings);
      return;
    }
    fill(note);
    fill(
      stats,
      stat('Balance', coins(balance.balanceSat), 'payout-balance'),
      stat('Paid', coins(balance.paidSat), 'payout-paid'),
      stat('Being paid', coins(balance.payingSat), 'payout-paying'),
      stat('Paid from', coins(String(balance.payments.minimumPayoutSat))),
      stat('Scheme', balance.payments.scheme.toUpperCase()),
      balance.held !== null && stat('Payments held', balance.held, 'payout-held'),
    );
    fill(
      payments,
      paid.length === 0
        ? h('p', {}, 'No payment yet.')
        : table(
            'Payments to this account, newest first',
            ['Time', 'Amount', 'Transaction'],
            paid.map((p) =>
              h(
                'tr',
                { 'data-payment': p.txid },
                h('td', {}, time(p.at)),
                h('td', { class: 'mono' }, coins(p.sat)),
                h('td', { class: 'mono', title: p.txid }, shortHash(p.txid)),
              ),
            ),
          ),
    );
    fill(
      earnings,
      earned.length === 0
        ? h('p', {}, 'No matured block has credited this account yet.')
        : table(
            'What each matured block credited, newest first',
            ['Time', 'Height', 'Block', 'Amount'],
            earned.map((e) =>
              h(
                'tr',
                { 'data-earning': e.blockHash },
                h('td', {}, time(e.at)),
                h('td', {}, e.height === null ? '–' : count(e.height)),
                h('td', { class: 'mono', title: e.blockHash }, shortHash(e.blockHash)),
                h('td', { class: 'mono' }, coins(e.sat), e.type === 'credit' ? '' : ` (${e.type})`),
              ),
            ),
          ),
    );
  };
  return {
    element,
    async refresh() {
      const [balance, paid, earned] = await Promise.all([
        api.balance(chain, account),
        api.payments(chain, account, { limit: ROWS }),
        api.earnings(chain, account, { limit: ROWS }),
      ]);
      render(balance, paid.items, earned.items);
    },
  };
}
