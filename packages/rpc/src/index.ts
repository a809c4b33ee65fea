export { RpcError, rpcErrorName } from './errors.js';
export type { MethodMap, MethodName, RpcLogger } from './types.js';
export { HEARTBEAT_METHOD, DROPPED_METHOD } from './envelope.js';
export {
  type ServiceCurve,
  checkServiceCurve,
  clientCurveFor,
  curvePublicKey,
  requireCurveOffLoopback,
  serverCurveOf,
  z85Decode,
  z85Encode,
} from './curve.js';
export {
  createRpcServer,
  type RpcCallContext,
  type RpcHandler,
  type RpcHandlers,
  type RpcPeerDropped,
  type RpcServer,
  type RpcServerCurve,
  type RpcServerEvents,
  type RpcServerOptions,
  type RpcServerStats,
} from './server.js';
export {
  createRpcClient,
  type RpcClient,
  type RpcClientCurve,
  type RpcClientEvents,
  type RpcClientOptions,
  type RpcClientStats,
  type RpcEndpointResolver,
  type RpcRequestOptions,
} from './client.js';
export { curveKeyPair } from 'zeromq';
