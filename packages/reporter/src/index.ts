export {
  createReporter,
  SEEN_SLACK_S,
  type Reporter,
  type ReporterOptions,
  type ReporterStats,
} from './reporter.js';
export type { BlockRecord, BlockWatcherStats } from './blocks.js';
export {
  type SubCredit,
  accountField,
  CHAIN_FIELD,
  ONLINE_WINDOW_MS,
  SLOT_MS,
  slotField,
  shareIdentity,
  workerName,
} from './credit.js';
export { sweepOfflineWorkers, type OnlineSweepOptions } from './online-sweep.js';
export { HASHRATE_WINDOWS_MIN, type HashrateWindow, reporterKeys, type ReporterKeys } from './keys.js';
export {
  hashesPerDiff,
  parseShareLogEntry,
  parseWorkerCounters,
  readAccountHashrate,
  readChainHashrate,
  readHashrate,
  readHashrateHistory,
  readShareCounts,
  readAccountWorkerNames,
  readOnline,
  readRound,
  readRoundTotal,
  readShareLog,
  readWorkers,
  type HashrateHistory,
  type HistoryPoint,
  type LoggedShare,
  type ShareCounts,
  type SeriesWindow,
  type ShareLogEntry,
  type WorkerCounters,
} from './read.js';
export {
  MAX_SHARE_DIFF,
  type ShareBatch,
  type ValidRequest,
  validateBatch,
  validateRequest,
} from './validate.js';
