export { scryptHash, sha256d } from './hash.js';
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
