export { ExtranonceSlotLease, leaseExtranonceSlot, type ExtranonceSlotOptions } from './extranonce.js';
export {
  acquireLease,
  Leadership,
  leaseLeadership,
  renewLease,
  type AcquireResult,
  type LeaseEvents,
  type LeaseOptions,
} from './lease.js';
export {
  GroupMember,
  Membership,
  NotMemberError,
  DEFAULT_MEMBER_TIMEOUT_MS,
  type GroupView,
} from './membership.js';
export {
  connectRedis,
  describeRedisConfig,
  duplicateRedis,
  type RedisClient,
  type RedisConfig,
  openServiceRedis,
  serviceRedisConfig,
} from './redis.js';
export {
  checkRedisVersion,
  compareVersions,
  MIN_REDIS_VERSION,
  parseRedisVersion,
  RedisVersionError,
  requireRedisVersion,
} from './redis-version.js';
export { defineLuaScripts, type LuaScriptRunner } from './scripts.js';
export {
  createRateMeter,
  DEFAULT_SERVICE_TTL_MS,
  getService,
  checkServiceIdFree,
  listServices,
  registerService,
  ServiceIdInUseError,
  ServiceNotFoundError,
  serviceEndpointResolver,
  sweepServiceEvents,
  watchServices,
  type RegisterServiceOptions,
  type ServiceEvent,
  type ServiceInfo,
  type ServiceRegistration,
  type ServiceState,
  type ServiceWatcher,
  type WatchServicesOptions,
} from './services.js';
export { EVENTS_MAX_LEN, appendEvent } from './events.js';
