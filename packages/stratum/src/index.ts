export { type ShareBatch, ShareSpool, type ShareSpoolOptions, type SpoolStats } from './spool.js';
export {
  isTrustedProxy,
  looksLikeProxyHeader,
  parseProxyHeader,
  type ProxyHeader,
  ProxyProtocolError,
  type ProxyParse,
  trustedProxies,
} from './proxy-protocol.js';
