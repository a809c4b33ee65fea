export { type RestClient, type RestClientOptions, HashwireApiError, createRestClient } from './rest.js';
export {
  type Positions,
  type StreamClient,
  type StreamListeners,
  type StreamOptions,
  type StreamSnapshot,
  type StreamState,
  type WebSocketConstructor,
  type WebSocketLike,
  StreamError,
  createStream,
} from './stream.js';
export type * from './types.js';
export type { EventName, PoolEvent } from '@hashwire/protocol';
