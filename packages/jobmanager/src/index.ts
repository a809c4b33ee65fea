export { createJobManager, type JobManager, type JobManagerStats } from './jobmanager.js';
export { BlockLog, type BlockLogOptions } from './block-log.js';
export { type BlockRecord, type BlockState, JobStore, type StoredJob } from './job-store.js';
export { ConfigError, type JobManagerOptions, type PayoutOption, resolveOptions } from './options.js';
export { TemplateSource, type TemplateSourceOptions, type TemplateUpdate } from './template-source.js';
export { blocknotifyCommand } from './blocknotify.js';
