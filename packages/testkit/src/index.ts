export {
  type BlocknotifyEvents,
  BlocknotifyReceiver,
  type BlocknotifyReceiverOptions,
  tcpBlocknotifyCommand,
  createBlocknotifyReceiver,
} from './blocknotify.js';
export { getFreePort } from './ports.js';
export { type RedisOptions, type RedisServer, startRedis } from './redis.js';
export {
  type HaproxyInstance,
  type HaproxyOptions,
  HaproxyConfigError,
  runtimeCommand,
  startHaproxy,
} from './haproxy.js';
export { LitecoinNode, type LitecoinNodeOptions, WALLET_NAME } from './litecoin-node.js';
export {
  type LitecoinRegtest,
  type LitecoinRegtestOptions,
  type WaitHeightOptions,
  startLitecoinRegtest,
} from './litecoin-regtest.js';
export {
  GOLDEN_CHAIN_VERSION,
  GOLDEN_HEIGHT,
  type GoldenChain,
  MWEB_PEGIN_HEIGHT,
  cacheDir,
  goldenChain,
} from './golden-chain.js';
export { type RichMempool, isHogEx, prepareRichMempool } from './mempool.js';
export { type ExitInfo, ManagedProcess, liveProcesses, makeTempDir, spawnManaged } from './process.js';
export { StopWaiting, type WaitOptions, waitFor } from './wait.js';
export {
  type RedisClusterOptions,
  type RedisClusterServer,
  type RedisSentinelServer,
  startRedisCluster,
  startRedisSentinel,
} from './redis-topologies.js';
export {
  SimMinerOptionsError,
  SimMiners,
  startSimMiners,
  type SimAlgorithm,
  type SimDisconnectEvent,
  type SimMinerOptions,
  type SimMinersEvents,
  type SimMinersStats,
  type SimNotifyEvent,
  type SimReconnectEvent,
  type SimShare,
  type SimShareAnswer,
  type SimShareCounters,
  type SimWorkerState,
  type SimWorkerStats,
} from './sim-miner/index.js';
export { grindNonce } from './grind.js';
export {
  type AuthorizeContext,
  type SubmitContext,
  hexOf,
  hostileAuthorizeParams,
  hostileString,
  hostileSubmitParams,
  hostileValue,
} from './hostile-params.js';
export { type RpcCounter, startRpcCounter } from './rpc-counter.js';
export { CHROMIUM_PATH, type HeadlessChromium, launchChromium } from './chromium.js';
