export {
  type ApiService,
  type ApiServiceOptions,
  type ApiStats,
  type ApiWatchOptions,
  type ApiStreamOptions,
  createApiService,
} from './service.js';
export { StreamCloseCode } from './stream-hub.js';
export { compileGlob, TopicError } from './stream-topics.js';
export { ApiError } from './errors.js';
export type { ApiChain } from './read.js';
export type { ApiPayments } from './read-payouts.js';
export { DEFAULT_TIMEOUT_S, GROUP_VERSION_HEADER } from './routes-groups.js';
export * from './auth.js';
export * from './event-tail.js';
export {
  TOKEN_KINDS,
  type TokenAuthenticator,
  type TokenAuthenticatorOptions,
  type TokenKind,
  type TokenRecord,
  type TokenRequest,
  type TokenStore,
  createTokenAuthenticator,
  createTokenStore,
  tokenRequest,
} from './tokens.js';
export { type AuditActor, actorOf, audit } from './audit.js';
export {
  compilePattern,
  patternProblem,
  MAX_PATTERN_LENGTH,
  MAX_PATTERN_WILDCARDS,
} from './watch-pattern.js';
export { EndpointError, parseEndpoint, type WatchEndpoint } from './watch-endpoint.js';
export { mysqlTableDdl, type WatchMessage } from './watch-deliver.js';
export { watchId } from './watch-store.js';
export type { WatchWorkerStats } from './watch-worker.js';
