export { type ShareBatch, ShareSpool, type ShareSpoolOptions, type SpoolStats } from './spool.js';
