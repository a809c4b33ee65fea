export { RenderInputError, type RenderInputIssue } from './input.js';
export {
  type HaproxyRenderInput,
  type HaproxyServer,
  type ServerCheckOptions,
  haproxyServerFromService,
  haproxyServerName,
  haproxyTime,
  renderHaproxy,
  serverAgentKeywords,
  serverKeywords,
  splitHostPort,
} from './haproxy-render.js';
export {
  CIRCUS_KIND_DEFAULTS,
  CIRCUS_WATCHER_KINDS,
  type CircusWatcherKind,
  type CircusRenderInput,
  type CircusWatcher,
  SERVICE_KINDS,
  type ServiceKind,
  renderCircus,
} from './circus-render.js';
export {
  type SystemdRenderInput,
  type SystemdService,
  renderSystemd,
  systemdWord,
} from './systemd-render.js';
export {
  HaproxyRuntime,
  HaproxyRuntimeError,
  type HaproxyRuntimeOptions,
  type ServerStat,
  type ServerState,
  runtimeCommand,
} from './runtime.js';
export {
  type ApiCheckOptions,
  type HaproxyApiRoute,
  type HaproxyApiServer,
  apiServerOf,
} from './haproxy-api.js';
export {
  type FollowApiServersOptions,
  type FollowStratumServersOptions,
  type FollowerLogger,
  type FollowerStats,
  type StratumFollower,
  followApiServers,
  followStratumServers,
} from './follow.js';
