import { StratumError, StratumErrorCode, type StratumRequest, parseStratumRequest } from '@hashwire/protocol';
import type { Connection } from './connection.js';
import {
  type MethodHost,
  handleAuthorize,
  handleConfigure,
  handleExtranonceSubscribe,
  handleSubscribe,
  handleSuggestDifficulty,
} from './methods.js';
import type { SharePipeline } from './shares.js';
import { SUSPENDED_REFUSAL } from './suspend.js';

/** What answering one request line needs from the server. */
export interface DispatchHost extends MethodHost {
  readonly pipeline: SharePipeline;
  /** No real work to hand out (see `StratumServer.suspend`): new miners are refused. */
  readonly suspended: boolean;
}

/**
 * Parses one line and runs its method. Every failure a miner can cause is answered with a
 * stratum error (its message, never a stack trace); malformed requests are counted, and
 * past `limits.maxProtocolErrors` the connection is closed.
 */
export function dispatchLine(host: DispatchHost, conn: Connection, line: string): void {
  let req: StratumRequest;
  try {
    req = parseStratumRequest(line);
  } catch (error) {
    protocolError(host, conn, (error as StratumError).requestId, error as StratumError);
    return;
  }
  if (host.suspended && !conn.state.subscribed) {
    // Sessions being sent away still get answers to the shares they had in flight.
    host.reply(conn, req.id, null, [StratumErrorCode.Other, SUSPENDED_REFUSAL, null]);
    host.closeConnection(conn, 'suspended', 'refused while suspended');
    return;
  }
  try {
    switch (req.method) {
      case 'mining.submit':
        conn.state.lastSubmitAt = Date.now();
        host.pipeline.submit(conn, req);
        return;
      case 'mining.subscribe':
        handleSubscribe(host, conn, req).catch((error: unknown) => requestFailed(host, conn, req, error));
        return;
      case 'mining.authorize':
        handleAuthorize(host, conn, req);
        return;
      case 'mining.configure':
        handleConfigure(host, conn, req);
        return;
      case 'mining.suggest_difficulty':
        handleSuggestDifficulty(host, conn, req);
        return;
      case 'mining.extranonce.subscribe':
        handleExtranonceSubscribe(host, conn, req);
        return;
      default:
        protocolError(host, conn, req.id, new StratumError(StratumErrorCode.Other, 'unknown method'));
    }
  } catch (error) {
    requestFailed(host, conn, req, error);
  }
}

function requestFailed(host: DispatchHost, conn: Connection, req: StratumRequest, error: unknown): void {
  if (error instanceof StratumError) {
    if (error.code === StratumErrorCode.Other) conn.state.counters.protocolErrors++;
    host.reply(conn, req.id, null, error.toTuple());
    checkProtocolErrors(host, conn);
    return;
  }
  host.fail(conn, error, req.method);
  host.reply(conn, req.id, null, [StratumErrorCode.Other, 'internal error', null]);
}

function protocolError(
  host: DispatchHost,
  conn: Connection,
  id: StratumRequest['id'],
  error: StratumError,
): void {
  conn.state.counters.protocolErrors++;
  host.reply(conn, id, null, error.toTuple());
  checkProtocolErrors(host, conn);
}

function checkProtocolErrors(host: DispatchHost, conn: Connection): void {
  const errors = conn.state.counters.protocolErrors;
  if (errors > host.options.limits.maxProtocolErrors) {
    host.closeConnection(conn, 'too-many-errors', `${errors} bad requests`);
  }
}
