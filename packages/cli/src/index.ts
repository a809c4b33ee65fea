export { main, usage, UsageError } from './main.js';
