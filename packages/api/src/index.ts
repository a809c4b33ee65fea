export { type ApiService, type ApiServiceOptions, type ApiStats, createApiService } from './service.js';
export { ApiError } from './errors.js';
export type { ApiChain } from './read.js';
export { DEFAULT_TIMEOUT_S, GROUP_VERSION_HEADER } from './routes-groups.js';
