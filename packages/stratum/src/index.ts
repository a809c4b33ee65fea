export {
  type QuarantineStats,
  type ShareBatch,
  ShareSpool,
  type ShareSpoolOptions,
  type SpoolStats,
} from './spool.js';
export {
  type BatchState,
  QUARANTINE_DIR,
  type QuarantineReason,
  type QuarantineRecord,
  type SplitRecord,
} from './spool-journal.js';
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
export {
  JobError,
  type PrepareJobOptions,
  type PreparedJob,
  SoloJob,
  type SoloWork,
  prepareJob,
} from './job.js';
export {
  type HandedJob,
  type JobAddOutcome,
  JobBook,
  type JobBookOptions,
  type JobBookStats,
} from './job-book.js';
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
export { JobFeed, type JobFeedOptions, type JobFeedStats } from './job-feed.js';
export {
  BlockSubmitter,
  type BlockSubmitterOptions,
  type BlockTarget,
  BlockUnansweredError,
} from './block-submit.js';
export { judgeWork, type WorkVerdict } from './work-health.js';
export { followDaemonHealth, type Suspendable } from './suspend.js';
export { createStratumServer } from './create.js';
export {
  HANDED_SESSION,
  HANDOFF_WAVE_SIZE,
  type HandedSession,
  type IpcChannel,
  receiveOverIpc,
  relayOverIpc,
  type SessionReceiver,
  sendOverIpc,
} from './handover.js';
export {
  checkStratumServiceOptions,
  createStratumService,
  type StratumService,
  type StratumServiceOptions,
} from './service.js';
export {
  StratumServer,
  type DisconnectEvent,
  type StratumServerEvents,
  type StratumServerParts,
  type StratumStats,
} from './server.js';
export {
  type BlockSink,
  type DaemonLossOptions,
  type DrainOptions,
  type JobSource,
  type ShareSink,
  type StratumLogger,
  type StratumServerOptions,
  type SubmitBlockReply,
  type SubmitBlockRequest,
  silentStratumLogger,
} from './options.js';
export type { BlockEvent } from './shares.js';
export type { CloseReason } from './connection.js';
export type { SessionState, SessionCounters } from './session.js';
export type { LimitOptions } from './limits.js';
export type { VardiffOptions } from './vardiff.js';
export { ExtranonceAllocator, type ExtranonceAllocatorOptions } from './extranonce.js';
export { SessionStore, type ResumableSession, type SessionStoreOptions } from './session-store.js';
export { ShareForwarder } from './forwarder.js';
export type {
  BacklogEvent,
  ForwarderEvents,
  ForwarderLogger,
  ForwarderStats,
  QuarantineEvent,
  ShareForwarderOptions,
} from './forwarder-options.js';
export { splitBatch, subBatchId } from './share-routing.js';
export { observeStratum, type ObserveStratumOptions } from './observe.js';
export {
  type AgentCheck,
  type AgentCheckOptions,
  type AgentWord,
  advertisedEndpoint,
  agentWordFor,
  startAgentCheck,
} from './agent.js';
export {
  startStratumMaster,
  controlSocketPath,
  workerBin,
  UpgradeError,
  type StratumMaster,
  type StratumMasterOptions,
  type UpgradeResult,
} from './master.js';
export type { Spread, SwitchCost } from './worker.js';
export type { StratumWorkerControl } from './service.js';
