import { type PoolEvent, type StreamClient, type StreamSnapshot, createStream } from '@hashwire/client';
import { token } from './session.js';

const STATE_TEXT = {
  connecting: 'Connecting to the live stream…',
  'catching-up': 'Reconnected: catching up on missed events…',
  connected: 'Live',
  reconnecting: 'Connection lost: reconnecting…',
  closed: 'Disconnected (reload the page)',
} as const;

/**
 * What the page received, for looking into it from the browser's console (and for the
 * end-to-end test that checks nothing is lost or doubled across a reconnect).
 */
interface DashboardDebug {
  events: string[];
  reconnects: number;
  state: string;
}
declare global {
  interface Window {
    hashwireDashboard: DashboardDebug;
  }
}

export interface LiveHandlers {
  snapshot(state: Record<string, unknown>): void;
  event(event: PoolEvent): void;
}

/** Opens the live stream on `topics` and shows its connection state in the header. */
export function openLive(topics: string[], handlers: LiveHandlers): StreamClient {
  const status = document.getElementById('live')!;
  const debug: DashboardDebug = { events: [], reconnects: 0, state: 'connecting' };
  window.hashwireDashboard = debug;
  const t = token();
  const stream = createStream({ url: location.origin, topics, ...(t !== null && { token: t }) });
  stream.on('state', (state) => {
    debug.state = state;
    if (state === 'reconnecting') debug.reconnects++;
    status.dataset.state = state;
    status.textContent = STATE_TEXT[state];
  });
  stream.on('snapshot', (snapshot: StreamSnapshot) => handlers.snapshot(snapshot.state));
  stream.on('event', (event) => {
    debug.events.push(`${event.stream}/${event.seq}`);
    handlers.event(event);
  });
  stream.on('error', (error) => {
    if (error.code === 'too_old') return; // the client takes a new snapshot by itself
    status.dataset.state = 'error';
    status.textContent = `Live stream: ${error.message}`;
  });
  return stream;
}
