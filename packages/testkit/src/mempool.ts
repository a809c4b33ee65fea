import type { BlockTemplate, BlockTemplateTransaction } from '@hashwire/chain';
import type { LitecoinNode } from './litecoin-node.js';
import { waitFor } from './wait.js';

export interface RichMempool {
  /** Spends a confirmed P2WPKH (bech32) output: its witness must survive into the block. */
  segwitSpend: string;
  /** An ordinary wallet payment to a legacy address. */
  payment: string;
  /** One transaction paying several address types (bech32, p2sh-segwit, legacy). */
  sendMany: string;
  /** Peg-in: coins moved into MWEB (paid to a wallet `mweb` address). */
  pegIn: string;
  /** All of the above. */
  txids: string[];
  /** A template taken after they arrived: holds every txid above, then the HogEx last. */
  template: BlockTemplate;
}

interface Unspent {
  txid: string;
  vout: number;
  address?: string;
  amount: number;
  confirmations: number;
  spendable: boolean;
  solvable: boolean;
}

const FEE = 0.0001;
const MWEB_MARKER = 0x00;
const HOGEX_FLAG = 0x08;

/**
 * True for the HogEx ("hogwarts express") transaction of a litecoin MWEB template. The daemon
 * does not label it: it is the template's last transaction, serialized with the MWEB flag
 * (`<version> 00 08 ...`: marker 0x00, flag 0x08) and paying a `witness_mweb_hogaddr` output.
 */
export function isHogEx(tx: BlockTemplateTransaction): boolean {
  const data = Buffer.from(tx.data.slice(0, 12), 'hex');
  return data.length >= 6 && data[4] === MWEB_MARKER && ((data[5] as number) & HOGEX_FLAG) !== 0;
}

/**
 * Puts what a realistic block needs into `node`'s mempool from its wallet: a spend of a
 * bech32 output, a plain payment, a multi-output payment and an MWEB peg-in. Then waits until
 * `getblocktemplate` (mweb+segwit rules) shows all of them and a HogEx last: the daemon reuses a
 * template for 5 s while only the mempool changes.
 */
export async function prepareRichMempool(node: LitecoinNode, timeoutMs = 20_000): Promise<RichMempool> {
  const rpc = node.rpc;
  const unspent = await rpc.call<Unspent[]>('listunspent', [0]);
  const bech32 = unspent.find(
    (u) =>
      u.confirmations >= 1 &&
      u.spendable &&
      u.solvable &&
      u.amount > 1 &&
      /^(rltc|ltc|tltc)1q/.test(u.address ?? ''),
  );
  if (!bech32) {
    throw new Error(
      `${node.name}: the wallet has no confirmed bech32 output over 1 LTC (mine to its wallet first)`,
    );
  }
  const to = await rpc.call<string>('getnewaddress', ['', 'p2sh-segwit']);
  const amount = Math.round((bech32.amount - FEE) * 1e8) / 1e8;
  const raw = await rpc.call<string>('createrawtransaction', [
    [{ txid: bech32.txid, vout: bech32.vout }],
    { [to]: amount },
  ]);
  const signed = await rpc.call<{ hex: string; complete: boolean }>('signrawtransactionwithwallet', [raw]);
  if (!signed.complete) throw new Error(`${node.name}: could not sign the bech32 spend`);
  const segwitSpend = await rpc.call<string>('sendrawtransaction', [signed.hex]);

  const legacy = await rpc.call<string>('getnewaddress', ['', 'legacy']);
  const payment = await rpc.call<string>('sendtoaddress', [legacy, 1.5]);

  const outputs: Record<string, number> = {};
  for (const type of ['bech32', 'p2sh-segwit', 'legacy']) {
    outputs[await rpc.call<string>('getnewaddress', ['', type])] = 0.25;
  }
  const sendMany = await rpc.call<string>('sendmany', ['', outputs]);

  // The wallet pays an MWEB address from its MWEB coins when it can: a pure MWEB transaction,
  // which lives only in the template's `mweb` blob. Asking for more than the MWEB balance forces
  // canonical inputs, i.e. a peg-in (a transaction with a `witness_mweb_pegin` output).
  const mwebBalance = unspent
    .filter((u) => /^(tmweb|mweb|ltcmweb)1/.test(u.address ?? ''))
    .reduce((sum, u) => sum + u.amount, 0);
  const mweb = await rpc.call<string>('getnewaddress', ['', 'mweb']);
  const pegIn = await rpc.call<string>('sendtoaddress', [mweb, Math.floor(mwebBalance) + 2]);
  const entry = await rpc.call<{ mweb?: { pegins?: unknown[] } }>('getmempoolentry', [pegIn]);
  if (!entry.mweb?.pegins?.length) throw new Error(`${node.name}: ${pegIn} is not a peg-in`);

  const txids = [segwitSpend, payment, sendMany, pegIn];
  const template = await waitFor(
    async () => {
      const t = await rpc.getBlockTemplate({ rules: ['mweb', 'segwit'] });
      const inTemplate = new Set(t.transactions.map((tx) => tx.txid));
      const last = t.transactions.at(-1);
      return txids.every((id) => inTemplate.has(id)) && t.mweb && last && isHogEx(last) ? t : undefined;
    },
    { timeoutMs, intervalMs: 250, what: `${node.name}'s template to hold ${txids.join(', ')} and a HogEx` },
  );
  return { segwitSpend, payment, sendMany, pegIn, txids, template };
}
