import { type DestinationStream, type Level, type Logger, pino } from 'pino';

export type { Logger } from 'pino';
export type LogLevel = Level | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerOptions {
  /** The service or component, e.g. `reporter`; every line carries it as `name`. */
  name: string;
  /** @defaultValue 'info' */
  level?: LogLevel;
  /** Fields on every line, e.g. `{ id: 'reporter-1', chain: 'ltc' }`. */
  base?: Record<string, unknown>;
  /** Where lines go. @defaultValue standard output */
  destination?: DestinationStream;
}

/**
 * The one logger factory: pino, JSON lines, structured fields (`log.info({ batchId, shares }, 'batch
 * credited')`). Hot paths log above `debug` only for rare events.
 */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? 'info';
  if (!LOG_LEVELS.includes(level)) {
    throw new TypeError(`log level ${JSON.stringify(level)} is not one of ${LOG_LEVELS.join(', ')}`);
  }
  return pino(
    {
      name: options.name,
      level,
      base: { pid: process.pid, ...options.base },
      timestamp: pino.stdTimeFunctions.epochTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}
