/**
 * A map from method name to its request and reply types, like `RpcMethods` in @hashwire/protocol.
 * Written as a mapped constraint so that interfaces (which have no index signature) satisfy it.
 */
export type MethodMap<M> = { [K in keyof M]: { req: unknown; rep: unknown } };

/** Method names of a method map as strings. */
export type MethodName<M> = keyof M & string;

/** The subset of a pino logger this package uses; pass a pino logger or child logger as is. */
export interface RpcLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: RpcLogger = {
  debug() {},
  warn() {},
  error() {},
};

/** `value`, or `fallback` when it is undefined; throws a clear error unless it is a positive number. */
export function checkPositive(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${field} must be a positive number, got ${value}`);
  return value;
}
