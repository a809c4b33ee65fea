import { RpcErrorCode, SHARES_WIRE } from '@hashwire/protocol';
import { RpcError } from '@hashwire/rpc';

/**
 * A `reporter.shares` request of share wire 1 (the release before `SHARES_WIRE` 2): one
 * `{ batchId, stratumId, chain, shares }` per request, no spool fields. Not malformed: it comes
 * from an older stratum server, which must send it elsewhere.
 */
export function isWire1Request(body: unknown): body is { stratumId?: unknown; batchId?: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  return 'batchId' in body && 'shares' in body && !('spoolId' in body) && !('subs' in body);
}

/** A stratum server still sending share wire 1 is logged at most once per this, per server. */
export const WIRE1_LOG_INTERVAL_MS = 60_000;

/** Stratum ids remembered for the rate limit; past this the memory is cleared (a log line more). */
const MAX_REMEMBERED = 1000;

interface Wire1Logger {
  warn(obj: object, msg?: string): void;
}

/**
 * The answer to a share wire 1 request: `Unavailable`, not `BadRequest`. The older forwarder
 * quarantines sub-batches refused as malformed (`BadRequest`, `TooLarge`) but fails over on
 * `Unavailable`: to an older reporter, or it keeps the batch in its spool until upgraded. So
 * during a rolling upgrade no share is quarantined, only delayed. Each stratum server is logged
 * at most once per `WIRE1_LOG_INTERVAL_MS`, with the requests answered since.
 */
export function createWire1Refusal(
  reporterId: string,
  logger: Wire1Logger,
  now: () => number = Date.now,
): (body: { stratumId?: unknown; batchId?: unknown }) => RpcError {
  const logged = new Map<string, { at: number; since: number }>();
  return (body) => {
    const stratumId = typeof body.stratumId === 'string' ? body.stratumId.slice(0, 128) : '?';
    const at = now();
    const last = logged.get(stratumId);
    if (!last || at - last.at >= WIRE1_LOG_INTERVAL_MS) {
      if (!last && logged.size >= MAX_REMEMBERED) logged.clear();
      logged.set(stratumId, { at, since: 0 });
      logger.warn(
        {
          stratumId,
          batchId: typeof body.batchId === 'string' ? body.batchId.slice(0, 128) : undefined,
          sharesWire: SHARES_WIRE,
          answeredSinceLastLog: last?.since ?? 0,
        },
        'reporter: a stratum server of an older release sent share wire 1, answered Unavailable (it fails over to an older reporter or keeps the batch in its spool): upgrade that stratum server',
      );
    } else last.since++;
    return new RpcError(
      RpcErrorCode.Unavailable,
      `reporter ${reporterId} speaks share wire ${SHARES_WIRE}; upgrade this stratum server (the batch stays in its spool until a reporter of its release or its own upgrade takes it)`,
    );
  };
}
