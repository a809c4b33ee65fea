export { scryptHash, sha256d } from './hash.js';
export * from './daemon.js';
export * from './daemon-pool.js';
export * from './blocknotify.js';
export * from './zmq-hashblock.js';
export {
  hashBackend,
  hashBackendInfo,
  hashImplementations,
  scryptHeaders,
  scryptHeadersSync,
  sha256dHeaders,
  sha256dMerkleRoot,
} from './hash.js';
export type { HashBackend, HashImplementation, ScryptHeadersOptions } from './hash.js';
