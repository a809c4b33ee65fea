import type { BenchSuite } from '../types.js';
import { apiSuite } from './api.js';
import { chainSuite } from './chain.js';
import { clusterSuite } from './cluster.js';
import { dashboardSuite } from './dashboard.js';
import { idleSuite } from './idle.js';
import { jobsSuite } from './jobs.js';
import { payoutsSuite } from './payouts.js';
import { protocolSuite } from './protocol.js';
import { registrySuite } from './registry.js';
import { rpcSuite } from './rpc.js';
import { sharesSuite } from './shares.js';
import { stratumMasterSuite } from './stratum-master.js';
import { stratumSharesSuite } from './stratum-shares.js';
import { stratumSuite } from './stratum.js';

/** Every suite `hashwire bench` knows, in run order. Issues add theirs here. */
export const suites: readonly BenchSuite[] = [
  protocolSuite,
  chainSuite,
  registrySuite,
  rpcSuite,
  stratumSharesSuite,
  stratumSuite,
  stratumMasterSuite,
  jobsSuite,
  idleSuite,
  sharesSuite,
  payoutsSuite,
  clusterSuite,
  apiSuite,
  dashboardSuite,
];
