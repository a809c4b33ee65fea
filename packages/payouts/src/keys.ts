import type { KeyBuilder } from '@hashwire/protocol';

/** The payouts' Redis keys of one chain: every one in the chain's `{chain}` slot. */
export function payoutKeys(keys: KeyBuilder, chain: string) {
  return {
    blocks: keys.blocks(chain),
    blocksIndex: keys.blocksIndex(chain),
    closedRound: (hash: string) => keys.closedRound(chain, hash),
    events: keys.events(chain),
    window: keys.shareWindow(chain),
    windowFound: keys.shareWindowFound(chain),
    windowPending: keys.shareWindowPending(chain),
    windowKeep: keys.shareWindowKeep(chain),
    balances: keys.balances(chain),
    ledger: keys.ledger(chain),
    shared: keys.payoutBlocks(chain),
    blockCredits: (hash: string) => keys.payoutBlockCredits(chain, hash),
    batches: keys.payoutBatches(chain),
    batchIndex: keys.payoutBatchIndex(chain),
    open: keys.payoutOpenBatch(chain),
    fence: keys.payoutFence(chain),
    held: keys.payoutHeld(chain),
    payNow: keys.payoutPayNow(chain),
    earningsIndex: keys.payoutEarningsIndex(chain),
    paymentsIndex: keys.payoutPaymentsIndex(chain),
    indexed: keys.payoutIndexed(chain),
    /** The payer lease (`holder|epoch`), held by the one running payer. */
    lease: keys.lease(`payouts:${chain}`),
  } as const;
}

export type PayoutKeys = ReturnType<typeof payoutKeys>;
