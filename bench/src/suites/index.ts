import type { BenchSuite } from '../types.js';
import { chainSuite } from './chain.js';
import { protocolSuite } from './protocol.js';
import { registrySuite } from './registry.js';

/** Every suite `hashwire bench` knows, in run order. Issues add theirs here. */
export const suites: readonly BenchSuite[] = [protocolSuite, chainSuite, registrySuite];
