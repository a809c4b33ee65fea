import {
  MAX_SUB_BATCHES_PER_REQUEST,
  RpcErrorCode,
  type RpcMethods,
  type ShareSubBatch,
  type SharesRequest,
  type SubBatchOutcome,
} from '@hashwire/protocol';
import { type RpcClient, RpcError } from '@hashwire/rpc';

export type ReporterClient = RpcClient<RpcMethods>;

/** A reporter says the sub-batch itself is unreadable: resending it cannot help. */
export function isMalformed(code: number): boolean {
  return code === RpcErrorCode.BadRequest || code === RpcErrorCode.TooLarge;
}

export interface ReporterRequestsOptions {
  stratumId: string;
  chain: string;
  /** The spool's identity and floor, read when each request leaves. */
  spool: { readonly spoolId: string; floor(): number };
  timeoutMs: number;
  /** Shares one request carries at most (a single bigger sub-batch goes alone). */
  maxShares: number;
  closed(): boolean;
  /** A request left carrying `subBatches` sub-batches. */
  onRequest(subBatches: number): void;
}

interface Item {
  sub: ShareSubBatch;
  resolve(outcome: SubBatchOutcome): void;
  reject(error: unknown): void;
}

/** The sub-batches one request to one reporter will carry. */
interface Outgoing {
  client: ReporterClient;
  items: Item[];
}

/**
 * Sends each sub-batch to a reporter together with every other sub-batch routed to that
 * reporter in the same turn of the event loop: one `reporter.shares` request per reporter,
 * however many buckets a spool batch spans. Each sub-batch gets its own outcome; a failure of
 * the whole request (timeout, unavailable) fails each of its sub-batches, which then fail over
 * on their own. A whole request refused as malformed (its size, say) is sent again one
 * sub-batch per request, so a sub-batch is only ever judged on itself.
 */
export class ReporterRequests {
  /** Sub-batches waiting for this turn's request, by reporter id. */
  private readonly outbox = new Map<string, Outgoing>();

  constructor(private readonly options: ReporterRequestsOptions) {}

  send(reporterId: string, client: ReporterClient, sub: ShareSubBatch): Promise<SubBatchOutcome> {
    return new Promise((resolve, reject) => {
      let out = this.outbox.get(reporterId);
      if (!out || out.client !== client) {
        const fresh: Outgoing = { client, items: [] };
        out = fresh;
        this.outbox.set(reporterId, fresh);
        setImmediate(() => {
          if (this.outbox.get(reporterId) === fresh) this.outbox.delete(reporterId);
          this.flush(fresh);
        });
      }
      out.items.push({ sub, resolve, reject });
    });
  }

  private flush(out: Outgoing): void {
    let chunk: Item[] = [];
    let shares = 0;
    for (const item of out.items) {
      const full =
        chunk.length >= MAX_SUB_BATCHES_PER_REQUEST ||
        shares + item.sub.shares.length > this.options.maxShares;
      if (chunk.length > 0 && full) {
        void this.request(out.client, chunk);
        chunk = [];
        shares = 0;
      }
      chunk.push(item);
      shares += item.sub.shares.length;
    }
    if (chunk.length > 0) void this.request(out.client, chunk);
  }

  private async request(client: ReporterClient, items: Item[]): Promise<void> {
    const { options } = this;
    if (options.closed()) {
      for (const item of items) item.reject(new Error('share forwarder closed'));
      return;
    }
    const body: SharesRequest = {
      stratumId: options.stratumId,
      spoolId: options.spool.spoolId,
      chain: options.chain,
      floor: options.spool.floor(),
      subs: items.map(({ sub }) => sub),
    };
    options.onRequest(items.length);
    let reply: { subs?: SubBatchOutcome[] } | undefined;
    try {
      reply = await client.request('reporter.shares', body, { timeoutMs: options.timeoutMs });
    } catch (error) {
      if (items.length > 1 && error instanceof RpcError && isMalformed(error.code)) {
        for (const item of items) void this.request(client, [item]);
        return;
      }
      for (const item of items) item.reject(error);
      return;
    }
    const outcomes = new Map<number, SubBatchOutcome>();
    for (const outcome of Array.isArray(reply?.subs) ? reply.subs : []) outcomes.set(outcome?.seq, outcome);
    for (const item of items) {
      const outcome = outcomes.get(item.sub.seq);
      if (outcome && (outcome.status === 'refused' || Number.isFinite(outcome.credited)))
        item.resolve(outcome);
      else {
        item.reject(
          new RpcError(
            RpcErrorCode.Internal,
            `reporter answered nothing usable for sub-batch ${item.sub.id}`,
          ),
        );
      }
    }
  }
}
