// The job side of the `stratum-master` bench: a stand-in jobmanager in its own process, so the
// stratum services under test (the stratum bin run directly, and the same bin under its master)
// get their jobs as in production, over ZeroMQ from a jobmanager they find in the registry. It
// answers `jm.subscribe` with the chain's current job, pushes health every second, and pushes a
// prebuilt job of round N when the miners' process writes `job N` on the chain's control port
// (one clock, the one that timestamps the arrivals, as in the `stratum` suite). Every job's
// network target is out of reach (no share becomes a block candidate) and every prevhash new
// (each job is clean, as on a block found elsewhere). Driven by `serveParent` requests.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type Server, createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { LITECOIN_REGTEST, buildJob } from '@hashwire/chain';
import {
  type Job,
  type JobmanagerHealth,
  type RpcMethods,
  type RpcPushes,
  createKeyBuilder,
} from '@hashwire/protocol';
import {
  type RedisClient,
  type ServiceRegistration,
  connectRedis,
  registerService,
} from '@hashwire/registry';
import { type RpcServer, createRpcServer } from '@hashwire/rpc';
import { getFreePort } from '@hashwire/testkit';
import { serveParent } from './child-ipc.js';
import {
  BENCH_ADDRESS,
  type FeedStartParams,
  type FeedStarted,
  benchTemplate,
  fanoutIds,
} from './stratum-bench-shared.js';

type JmMethods = Pick<RpcMethods, 'jm.subscribe' | 'jm.submitBlock'>;
type JmPushes = Pick<RpcPushes, 'job' | 'health'>;

const HEALTH_INTERVAL_MS = 1000;

let redis: RedisClient | null = null;
const servers = new Map<string, RpcServer<JmMethods, JmPushes>>();
const registrations: ServiceRegistration[] = [];
const controls: Server[] = [];
let healthTimer: NodeJS.Timeout | undefined;

async function start(p: FeedStartParams): Promise<FeedStarted> {
  const txids = Array.from({ length: p.txCount }, () => randomBytes(32).toString('hex'));
  const current = new Map<string, Job>();
  /** Round r's job of each chain, built before anything is timed. */
  const rounds = new Map<string, Job[]>();
  for (const chain of p.chains) {
    const make = (jobId: string, height: number): Job =>
      buildJob({
        template: benchTemplate(txids, height, false),
        params: LITECOIN_REGTEST,
        chain,
        payouts: [{ address: BENCH_ADDRESS }],
        extranonce1Size: p.extranonce1Size,
        extranonce2Size: p.extranonce2Size,
        epoch: 1,
        jobId,
        jmId: `bench-jm-${chain}`,
        cleanJobs: true,
      }).job;
    rounds.set(
      chain,
      Array.from({ length: p.rounds + 1 }, (_, round) => make(fanoutIds(round).job, 1000 + round)),
    );
    current.set(chain, make('first', 999));
  }
  // Pushed with a fresh `createdAt`: a feed refuses to keep miners on work it thinks stale.
  const push = (chain: string, job: Job) => {
    const fresh = { ...job, createdAt: Date.now() };
    current.set(chain, fresh);
    servers.get(chain)!.push(chain, 'job', fresh);
  };

  const health = (chain: string): JobmanagerHealth => ({
    jmId: `bench-jm-${chain}`,
    chain,
    healthy: true,
    lastOkAt: Date.now(),
    lastError: null,
    lastTemplateAt: Date.now(),
    templateAgeMs: 0,
  });
  // One RPC server per chain: the registry takes two services on one endpoint for one process.
  for (const chain of p.chains) {
    servers.set(
      chain,
      await createRpcServer<JmMethods, JmPushes>({
        portRange: [await getFreePort(), 65535],
        handlers: {
          'jm.subscribe': (req, ctx) => {
            ctx.subscribe(req.chain);
            const job = current.get(req.chain);
            return { job: job ? { ...job, createdAt: Date.now() } : null };
          },
          'jm.submitBlock': () => ({ accepted: false, hash: '', reason: 'bench: no blocks' }),
        },
      }),
    );
  }
  healthTimer = setInterval(() => {
    for (const chain of p.chains) servers.get(chain)!.push(chain, 'health', health(chain));
  }, HEALTH_INTERVAL_MS);

  redis = connectRedis(p.redisUrl, 'bench-feed');
  const keys = createKeyBuilder({ prefix: p.keyPrefix });
  const controlPorts: Record<string, number> = {};
  for (const chain of p.chains) {
    registrations.push(
      await registerService({
        redis,
        keys,
        kind: 'jobmanager',
        id: `bench-jm-${chain}`,
        rpc: servers.get(chain)!.endpoint,
        chain,
      }),
    );
    const control = createServer((socket) => {
      socket.setNoDelay(true);
      socket.on('error', () => {});
      createInterface({ input: socket }).on('line', (line) => {
        const [what, n] = line.split(' ');
        const job = what === 'job' ? rounds.get(chain)![Number(n)] : undefined;
        if (job) push(chain, job);
      });
    });
    control.listen(0, '127.0.0.1');
    await once(control, 'listening');
    controls.push(control);
    controlPorts[chain] = (control.address() as { port: number }).port;
  }
  return { controlPorts };
}

serveParent({ start }, async () => {
  clearInterval(healthTimer);
  for (const control of controls) control.close();
  await Promise.all(registrations.map((r) => r.close()));
  await Promise.all([...servers.values()].map((server) => server.close()));
  redis?.disconnect();
});
