export { scryptHash, sha256d } from './hash.js';
export * from './daemon.js';
export * from './daemon-pool.js';
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
export * from './errors.js';
export * from './bytes.js';
export * from './params.js';
export * from './script.js';
export * from './address.js';
export * from './transaction.js';
export * from './merkle.js';
export * from './header.js';
export * from './target.js';
export * from './coinbase.js';
export * from './solo.js';
export * from './block.js';
export {
  type BlockTemplate,
  type BlockTemplateTransaction,
  blockTransactions,
  parseBlockTemplate,
  templateMerkleBranch,
  templateTxids,
} from './template.js';
export * from './block-assembly.js';
export { type BuiltJob, type JobBuildOptions, buildJob, headerFieldHex } from './job-builder.js';
