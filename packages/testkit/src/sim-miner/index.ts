export { SimMinerOptionsError, SimMiners, startSimMiners } from './miners.js';
export type {
  SimAlgorithm,
  SimDisconnectEvent,
  SimMinerOptions,
  SimMinersEvents,
  SimMinersStats,
  SimNotifyEvent,
  SimReconnectEvent,
  SimShare,
  SimShareAnswer,
  SimShareCounters,
  SimWorkerState,
  SimWorkerStats,
} from './types.js';
