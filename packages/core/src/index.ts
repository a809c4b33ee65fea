export { createLogger, LOG_LEVELS, type Logger, type LoggerOptions, type LogLevel } from './logger.js';
export {
  BATCH_OUTCOMES,
  BLOCK_STATES,
  createMetrics,
  PROMETHEUS_NAMES,
  SHARE_RESULTS,
  STATSD_NAMES,
  type BatchOutcomeLabel,
  type BlockStateLabel,
  type Metrics,
  type MetricsOptions,
  type ShareResultLabel,
  type StatsdOptions,
} from './metrics.js';
export { type HealthReport, type StatusServer, type StatusServerOptions, startStatusServer } from './http.js';
export { readJsonConfig, type ReadJsonConfigOptions, StartupError } from './config.js';
