export {
  SAT_PER_COIN,
  WEIGHT_PER_DIFF,
  coinToSat,
  decimalToUnits,
  diffToWeight,
  satToCoin,
} from './amounts.js';
export { type AuditReport, auditPayouts } from './audit.js';
export { type PayoutKeys, payoutKeys } from './keys.js';
export { earningsMember, indexLedger, indexStamp, paymentMember } from './ledger-index.js';
export {
  type BlockShareOut,
  type DaemonCall,
  FencedError,
  type MaturityContext,
  type MaturityResult,
  coinbaseReward,
  shareOutMatured,
} from './maturity.js';
export {
  COMMENT_PREFIX,
  type FaultPoint,
  NotPayerError,
  type PayResult,
  type PayerContext,
  type PaymentBatch,
  findBatchInWallet,
  payOnce,
} from './payer.js';
export { type Payer, type PayerOptions, type PayerStats, createPayer } from './payer-service.js';
export { type PayerProcess, type PayerProcessOptions, createPayerProcess } from './payer-process.js';
export {
  DEFAULT_PAYMENT_SETTINGS,
  POOL_ACCOUNT,
  type PaymentSettings,
  PaymentSettingsError,
  resolvePaymentSettings,
} from './settings.js';
export { type ShareOut, type ShareOutInput, computeShareOut, feePercentToBasisPoints } from './share-out.js';
export { type PplnsWindow, pplnsWindowWeight, readPplnsWindow, roundWeights } from './window.js';
