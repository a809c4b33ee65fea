export { type ShareBatch, ShareSpool, type ShareSpoolOptions, type SpoolStats } from './spool.js';
export {
  isTrustedProxy,
  looksLikeProxyHeader,
  parseProxyHeader,
  type ProxyHeader,
  ProxyProtocolError,
  type ProxyParse,
  trustedProxies,
} from './proxy-protocol.js';
export { type DedupeOutcome, ShareDedupe } from './dedupe.js';
export {
  DEFAULT_JOB_DIFFICULTIES,
  type JobDifficulties,
  ShareTargetCache,
  createJobDifficulties,
  difficultyForJob,
  recordJobSent,
} from './difficulty.js';
export { JobError, type PrepareJobOptions, type PreparedJob, prepareJob } from './job.js';
export { type JobAddOutcome, JobBook, type JobBookOptions, type JobBookStats } from './job-book.js';
export {
  type ShareCheck,
  type ShareContext,
  ShareRejectReason,
  type ShareSubmission,
  ShareValidator,
  type ShareValidatorOptions,
  type ShareVerdict,
  parseHexWord,
} from './validate.js';
export { JobFeed, type JobFeedOptions } from './job-feed.js';
