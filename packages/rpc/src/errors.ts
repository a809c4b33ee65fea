import { RpcErrorCode } from '@hashwire/protocol';

const codeNames = new Map<number, string>(Object.entries(RpcErrorCode).map(([name, code]) => [code, name]));

/** Name of an RPC error code (`Timeout`), or `code <n>` for one this version does not know. */
export function rpcErrorName(code: number): string {
  return codeNames.get(code) ?? `code ${code}`;
}

/**
 * An error with a numeric code that crosses the wire. A handler throws one to choose the code its
 * caller sees; the client rejects with one for remote errors, deadlines and lost connections.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: RpcErrorCode;

  constructor(code: RpcErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
