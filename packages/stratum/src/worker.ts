import type { Server, Socket } from 'node:net';
import type { Logger } from '@hashwire/core';
import type { Share } from '@hashwire/protocol';
import { HANDOFF_WAVE_SIZE, type IpcChannel, receiveOverIpc, sendOverIpc } from './handover.js';
import type { HandedJob } from './job-book.js';
import { type PeerShareServer, connectPeerShares, servePeerShares } from './peer-shares.js';
import type { StratumService, StratumServiceOptions } from './service.js';

// The worker's side of the stratum master (`master.ts`): the messages it answers on its IPC
// channel. Every message is `{ type: 'hashwire:<what>', … }`; the master relays between workers.

/** The variable a master sets for its worker: `{ port, agentPort, standby }` as JSON. */
export const WORKER_ENV = 'HASHWIRE_STRATUM_WORKER';

export const MSG = {
  connection: 'hashwire:connection',
  /** To a worker, with the miner port's listening socket: accept from it (answered `listening`). */
  listen: 'hashwire:listen',
  listening: 'hashwire:listening',
  /** To the owner at a switch: stop accepting; the socket comes back as `listener-back`, then `listener-closed`. */
  yieldListener: 'hashwire:yield-listener',
  listenerBack: 'hashwire:listener-back',
  listenerClosed: 'hashwire:listener-closed',
  agent: 'hashwire:agent',
  /** To the owner: serve the standby's shares (`peer-shares.ts`) and give the jobs for it. */
  prepare: 'hashwire:prepare',
  prepared: 'hashwire:prepared',
  /** To the owner: the switch did not happen (stop serving shares). */
  cancel: 'hashwire:cancel',
  /** To the standby: the owner's jobs (`StratumServer.adoptJobs`). */
  adoptJobs: 'hashwire:adopt-jobs',
  jobsAdopted: 'hashwire:jobs-adopted',
  handOff: 'hashwire:hand-off',
  handed: 'hashwire:handed',
  hold: 'hashwire:hold',
  holding: 'hashwire:holding',
  retire: 'hashwire:retire',
  retired: 'hashwire:retired',
  takeSpool: 'hashwire:take-spool',
  owning: 'hashwire:owning',
  failed: 'hashwire:failed',
} as const;

export interface WorkerMessage {
  type: string;
  n?: number;
  jobs?: HandedJob[];
  error?: string;
  moved?: number;
  word?: string;
  waveSize?: number;
  /** With `owning`: how long the shares held meanwhile waited in it for the spool. */
  ownedMs?: number;
  /** With `owning`: what the switch cost the moved sessions, as this worker saw it. */
  switchCost?: SwitchCost;
}

/** A few numbers (ms) and how many there were. */
export interface Spread {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** What a switch cost the miners, measured by the new worker (`UpgradeResult.cost`). */
export interface SwitchCost {
  /** Each moved session: from the old worker's stop of its reading to this one's start. */
  pauseMs: Spread;
  /** Of which in the old worker: answers in flight, pending writes, the claim detached. */
  leaveMs: Spread;
  /** Of which on the way: the socket through the master. */
  transitMs: Spread;
  /** Of which in this worker: the claim taken again. */
  adoptMs: Spread;
  /** Each share written by the old worker for this one: from sending it to the answer. */
  peerAppendMs: Spread;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: Math.round(sorted.at(-1) ?? 0) };
}

type WorkerSetting = NonNullable<StratumServiceOptions['worker']>;

/** The worker setting a master passed, or null when this process runs on its own (as today). */
export function workerSetting(): Omit<WorkerSetting, 'appendElsewhere'> | null {
  const text = process.env[WORKER_ENV];
  if (!text || !process.send) return null;
  const parsed = JSON.parse(text) as { port: number; agentPort: number; standby: boolean };
  return { port: parsed.port, agentPort: parsed.agentPort, standby: parsed.standby === true };
}

/**
 * Wires a worker to its master: returns the service's `worker` option (with the append a
 * standby sends its shares through, to the owner at `sharesPath`) and `attach`, to call with the
 * service once created.
 */
export function workerLink(
  setting: Omit<WorkerSetting, 'appendElsewhere'>,
  logger: Logger,
  sharesPath: string,
): { option: WorkerSetting; attach(service: StratumService): void } {
  const channel = process as unknown as IpcChannel & NodeJS.Process;
  const send = (message: WorkerMessage) => {
    if (channel.connected) channel.send?.(message);
  };
  const owner = connectPeerShares(sharesPath);
  let peerShares: PeerShareServer | null = null;
  const stopServing = async () => {
    const serving = peerShares;
    peerShares = null;
    await serving?.close();
  };
  const pauses: number[] = [];
  const leaves: number[] = [];
  const transits: number[] = [];
  const adoptions: number[] = [];
  const appends: number[] = [];
  const appendElsewhere = (share: Share) => {
    const sent = performance.now();
    const written = owner.append(share);
    const took = () => appends.push(performance.now() - sent);
    written.then(took, took);
    return written;
  };
  return {
    option: { ...setting, appendElsewhere },
    attach(service) {
      const control = service.worker!;
      const failed = (step: string, error: unknown) => {
        logger.error({ err: error }, `stratum worker: ${step} failed`);
        send({ type: MSG.failed, error: `${step}: ${(error as Error)?.message ?? String(error)}` });
      };
      channel.on('message', (message: unknown, handle?: unknown) => {
        const m = message as WorkerMessage | null;
        if (!m || typeof m.type !== 'string') return;
        switch (m.type) {
          case MSG.connection:
            if (handle) control.acceptSocket(handle as Socket);
            break;
          case MSG.listen:
            // Taken in the turn it arrives, before any connection could be accepted on it.
            if (handle) {
              control.listenOn(handle as Server);
              send({ type: MSG.listening });
            }
            break;
          case MSG.yieldListener: {
            const listener = control.releaseListener();
            if (!listener) {
              send({ type: MSG.listenerClosed });
              break;
            }
            // Closed here once sent: the master (then the next worker) holds it from now on.
            channel.send?.({ type: MSG.listenerBack }, listener as never, undefined, () => {
              listener.close();
              send({ type: MSG.listenerClosed });
            });
            break;
          }
          case MSG.prepare: {
            const server = service.server;
            if (!server) return failed('prepare', new Error('not started'));
            (peerShares
              ? Promise.resolve(peerShares)
              : servePeerShares(sharesPath, control.appendForPeer)
            ).then(
              (serving) => {
                peerShares = serving;
                send({ type: MSG.prepared, jobs: server.handedJobs() });
              },
              (error) => failed('prepare', error),
            );
            break;
          }
          case MSG.cancel:
            void stopServing();
            break;
          case MSG.adoptJobs: {
            const server = service.server;
            if (!server) return failed('adopt-jobs', new Error('not started'));
            send({ type: MSG.jobsAdopted, n: server.adoptJobs(m.jobs ?? []) });
            break;
          }
          case MSG.handOff: {
            const server = service.server;
            if (!server) return failed('hand-off', new Error('not started'));
            server.handOffSessions(sendOverIpc(channel), m.waveSize ?? HANDOFF_WAVE_SIZE).then(
              (moved) => send({ type: MSG.handed, moved }),
              (error) => failed('hand-off', error),
            );
            break;
          }
          case MSG.hold:
            control.holdShares().then(
              () => send({ type: MSG.holding }),
              (error) => failed('hold', error),
            );
            break;
          case MSG.retire:
            stopServing()
              .then(() => control.retire())
              .then(
                () => {
                  const told = new Promise((r) =>
                    channel.send?.({ type: MSG.retired }, undefined, undefined, r),
                  );
                  void Promise.allSettled([told, service.close()]).then(() => process.exit(0));
                },
                (error) => failed('retire', error),
              );
            break;
          case MSG.takeSpool:
            control.takeSpool().then(
              ({ ownedMs }) => {
                owner.close();
                send({
                  type: MSG.owning,
                  ownedMs,
                  switchCost: {
                    pauseMs: spread(pauses),
                    leaveMs: spread(leaves),
                    transitMs: spread(transits),
                    adoptMs: spread(adoptions),
                    peerAppendMs: spread(appends),
                  },
                });
              },
              (error) => failed('take-spool', error),
            );
            break;
        }
      });
      // A standby adopts the sessions the old worker hands over (relayed by the master).
      receiveOverIpc(channel, (socket, session) => {
        const server = service.server;
        if (!server) {
          socket.destroy();
          return Promise.resolve(false);
        }
        const arrived = Date.now();
        return server.adoptSession(socket, session).then((adopted) => {
          const { stoppedAt, sentAt } = session;
          if (adopted && stoppedAt !== undefined && sentAt !== undefined) {
            const reading = Date.now();
            pauses.push(reading - stoppedAt);
            leaves.push(sentAt - stoppedAt);
            transits.push(arrived - sentAt);
            adoptions.push(reading - arrived);
          }
          return adopted;
        });
      });
      // A supervisor may signal the whole group (systemd's KillMode=control-group, Ctrl-C under
      // `hashwire up`) and the master passes SIGTERM on as well: the first starts the drain (the
      // scaffold's handler), the others must not kill the worker in the middle of it.
      // The IPC channel alone must not keep the worker alive once its service closed.
      process.channel?.unref();
      const ignore = () => {};
      process.on('SIGTERM', ignore);
      process.on('SIGINT', ignore);
      // The master answers HAProxy's agent check with its current worker's word.
      const tell = () => send({ type: MSG.agent, word: control.agentWord() });
      const timer = setInterval(tell, 250);
      timer.unref();
      tell();
      // The master is gone (killed): the sessions are closed at once (resumable), the spool
      // sealed, and the process ends, so a restarted master's worker is the spool's only writer.
      channel.once('disconnect', () => {
        clearInterval(timer);
        service.close().finally(() => process.exit(1));
      });
    },
  };
}
