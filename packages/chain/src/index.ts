export { scryptHash, sha256d } from './hash.js';
