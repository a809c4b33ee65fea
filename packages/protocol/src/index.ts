export * from './events.js';
export * from './framer.js';
export * from './keys.js';
export * from './rpc.js';
export * from './stratum.js';
export * from './ring.js';
export * from './share.js';
