export { createLogger, LOG_LEVELS, type Logger, type LoggerOptions, type LogLevel } from './logger.js';
export {
  BATCH_OUTCOMES,
  BLOCK_STATES,
  createMetrics,
  PROMETHEUS_NAMES,
  PAYOUT_RUNS,
  QUARANTINE_REASONS,
  SHARE_RESULTS,
  STATSD_NAMES,
  type BatchOutcomeLabel,
  type BlockStateLabel,
  type Metrics,
  type MetricsOptions,
  type PayoutRunLabel,
  type QuarantineReasonLabel,
  type ShareResultLabel,
  type StatsdOptions,
} from './metrics.js';
export {
  type HealthReport,
  type StatusServer,
  type StatusServerOptions,
  isWildcardHost,
  startStatusServer,
} from './http.js';
export { readJsonConfig, type ReadJsonConfigOptions, StartupError } from './config.js';
export {
  type BinConfig,
  type BinContext,
  type BinRedis,
  type BinService,
  runServiceBin,
  type ServiceBinOptions,
} from './service-bin.js';
export {
  ensureAdminTokenFile,
  generateAdminToken,
  readSecretFile,
  readServiceSecrets,
  type ServiceSecrets,
  writeSecretFile,
} from './secrets.js';
export {
  loadPoolConfig,
  type LoadPoolConfigOptions,
  ENV_PREFIX,
  chainFronts,
  type ChainFront,
} from './pool-config.js';
export { ConfigError, formatIssue, type PoolConfigIssue } from './pool-config-issues.js';
export {
  poolConfigSchema,
  type ChainConfig,
  type PoolConfig,
  type PoolConfigInput,
} from './pool-config-schema.js';
export { poolConfigReference } from './pool-config-docs.js';
export { socketCommand } from './socket-command.js';
export {
  type HaproxyProcess,
  type HaproxyProcesses,
  type HaproxyReload,
  HaproxyReloadError,
  type HaproxyReloadOptions,
  haproxyProcesses,
  parseHaproxyProcesses,
  reloadHaproxy,
} from './haproxy-master.js';
export { gitCommit, packageVersion } from './version.js';
