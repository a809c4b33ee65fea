import { StartupError, readJsonConfig } from './config.js';
import { LOG_LEVELS, type LogLevel, type Logger, createLogger } from './logger.js';
import { type ServiceSecrets, readServiceSecrets } from './secrets.js';

/** What a bin runs: a library service object (`createReporter`, `createStratumService`, …). */
export interface BinService {
  /** Opens what `create` did not (listeners, registration); the ready line follows it. */
  start?(): Promise<void>;
  /** Planned stop (SIGTERM, SIGINT, `POST /drain`): hand the work to the service's peers. */
  drain(): Promise<void>;
  /** Releases what is left (after `drain`, or after a failed `start`). */
  close(): Promise<void>;
}

/** The fields every service config has. */
export interface BinConfig {
  id: string;
  chain?: string;
  logLevel?: LogLevel;
}

/** The connection the bin opens before the service, closed after it. */
export interface BinRedis {
  disconnect(): void;
}

export interface BinContext<R extends BinRedis> {
  redis: R;
  logger: Logger;
  /** The `curve` keys and admin token, read from their files. */
  secrets: ServiceSecrets;
  /** Starts the same drain as SIGTERM (for `POST /drain`). */
  requestStop(): void;
}

export interface ServiceBinOptions<C extends BinConfig, R extends BinRedis, S extends BinService> {
  /** `stratum`, `reporter`, …: the logger's name and every error line's prefix. */
  name: string;
  /** Where the JSON config is read from without a file argument, e.g. `HASHWIRE_STRATUM_CONFIG`. */
  envVar: string;
  /** Config fields that must be non-empty strings. */
  requiredText: readonly string[];
  /**
   * Fields on every log line. @defaultValue the config's `id` and `chain` (a service whose own
   * child logger adds them passes `{}`, so no line carries them twice)
   */
  logBase?(config: C): Record<string, unknown>;
  /** The service's own checks of its config, before anything is opened; throw naming the field. */
  check?(config: C): void;
  /** Connects the service's Redis and proves it answers (`openServiceRedis`); throws naming the problem. */
  openRedis(config: C, connectionName: string): Promise<R>;
  create(config: C, context: BinContext<R>): Promise<S>;
  /** Fields of the ready line besides `ready` and `id`. */
  ready(service: S, config: C, secrets: ServiceSecrets): Record<string, unknown>;
}

/** One line, no stack: what an operator reads when a service does not start. */
function oneLine(name: string, error: unknown): string {
  const message = String((error as Error)?.message ?? error)
    .replace(new RegExp(`^${name}: `), '')
    .replace(/\s*\n\s*/g, ' ');
  return `${name}: ${message}\n`;
}

/**
 * The one scaffold of the service bins: reads the JSON config (file argument or `envVar`),
 * checks it, opens Redis (one PING), creates and starts the service, prints one
 * `{"ready":true,"id":…}` line on stdout, and on SIGTERM/SIGINT (or `requestStop`) drains and
 * closes it and exits 0. Anything that fails before the ready line exits 1 with one line
 * `<name>: <message>` on stderr; logs are JSON lines on stderr.
 */
export function runServiceBin<C extends BinConfig, R extends BinRedis, S extends BinService>(
  options: ServiceBinOptions<C, R, S>,
): void {
  const run = async (): Promise<void> => {
    const config = readJsonConfig({
      envVar: options.envVar,
      ...(process.argv[2] ? { file: process.argv[2] } : {}),
      requiredText: options.requiredText,
    }) as unknown as C;
    if (config.logLevel !== undefined && !LOG_LEVELS.includes(config.logLevel)) {
      throw new StartupError(`logLevel must be one of ${LOG_LEVELS.join(', ')}`);
    }
    options.check?.(config);
    const secrets = readServiceSecrets(config as unknown as Record<string, unknown>);
    const logger = createLogger({
      name: options.name,
      level: config.logLevel ?? 'info',
      base: options.logBase
        ? options.logBase(config)
        : { id: config.id, ...(config.chain !== undefined ? { chain: config.chain } : {}) },
      destination: process.stderr,
    });
    const redis = await options.openRedis(config, `${options.name}-${config.id}`);
    let requestStop = () => {};
    const stopRequested = new Promise<void>((resolve) => {
      requestStop = resolve;
    });
    let service: S;
    try {
      service = await options.create(config, { redis, logger, secrets, requestStop: () => requestStop() });
    } catch (error) {
      // Nothing may keep the process alive after a failed start: it must exit with its message.
      redis.disconnect();
      throw error;
    }
    try {
      await service.start?.();
    } catch (error) {
      await service.close().catch(() => {});
      redis.disconnect();
      throw error;
    }
    process.stdout.write(
      `${JSON.stringify({ ready: true, id: config.id, ...options.ready(service, config, secrets) })}\n`,
    );
    process.once('SIGTERM', requestStop);
    process.once('SIGINT', requestStop);
    await stopRequested;
    try {
      await service.drain();
    } catch (error) {
      logger.error({ err: error }, `${options.name}: drain failed`);
    }
    await service
      .close()
      .catch((error: unknown) => logger.error({ err: error }, `${options.name}: close failed`));
    redis.disconnect();
  };
  run().then(
    () => {
      process.exitCode = 0;
    },
    (error: unknown) => {
      process.stderr.write(oneLine(options.name, error));
      process.exitCode = 1;
    },
  );
}
