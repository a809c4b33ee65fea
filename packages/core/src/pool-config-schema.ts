import { ShareLimits } from '@hashwire/protocol';
import * as z from 'zod';
import { LOG_LEVELS } from './logger.js';

/*
 * The pool-wide config file: every key, its type, default and allowed values. The docs page
 * (docs/configuration.md) is generated from this schema, and a test keeps it in step.
 * Relative paths are taken from the config file's folder (the working directory without a file).
 */

const int = (min: number, max: number, fallback: number, description: string) =>
  z.number().int().min(min).max(max).default(fallback).describe(description);
const ms = (fallback: number, description: string) => int(1, 2 ** 31 - 1, fallback, `${description} (ms)`);
const port = z.number().int().min(1).max(65535);
const portRange = (first: number, last: number, description: string) =>
  z
    .tuple([z.number().int().min(0).max(65535), z.number().int().min(0).max(65535)])
    .default([first, last])
    .describe(`${description}: [first, last], the first free port is bound`);
const section = <T extends z.ZodRawShape>(shape: T, description: string) =>
  z
    .strictObject(shape)
    .prefault({} as never)
    .describe(description);
const hostPort = z.strictObject({
  host: z.string().min(1).describe('host name or address'),
  port: port.describe('port'),
});
const reconnectTarget = z.strictObject({
  host: z.string().min(1).describe('host name or address miners are sent to'),
  port: port.describe('port miners are sent to'),
  waitSeconds: z.number().int().min(0).optional().describe('seconds the miner waits before reconnecting'),
});

const redis = section(
  {
    url: z
      .string()
      .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
      .optional()
      .describe(
        'redis://[user:password@]host:port[/db]; default redis://127.0.0.1:6379 when neither sentinel nor cluster is set',
      ),
    sentinel: z
      .strictObject({
        name: z.string().min(1).describe('master group name'),
        sentinels: z.array(hostPort).min(1).describe('sentinel addresses'),
        password: z.string().optional().describe('password of the Redis servers'),
        sentinelPassword: z.string().optional().describe('password of the sentinels'),
        db: z.number().int().min(0).max(65535).optional().describe('database number'),
      })
      .optional()
      .describe('Redis Sentinel instead of url'),
    cluster: z
      .strictObject({
        nodes: z.array(hostPort).min(1).describe('seed nodes'),
        password: z.string().optional().describe('password of the nodes'),
      })
      .optional()
      .describe('Redis Cluster instead of url'),
    keyPrefix: z
      .string()
      .min(1)
      .default('hw:')
      .describe('put before every key (several pools can share a Redis)'),
  },
  'the Redis every service uses for discovery, leases, sessions and accounting',
);

const daemon = z.strictObject({
  url: z
    .string()
    .regex(/^http:\/\/[^/]/, 'must be an http:// address')
    .describe('JSON-RPC address, e.g. http://user:pass@127.0.0.1:19443/ (credentials may be in the URL)'),
  user: z.string().optional().describe('RPC user (or in the URL, or cookieFile)'),
  password: z.string().optional().describe('RPC password'),
  cookieFile: z.string().optional().describe("path of the daemon's .cookie file instead of user/password"),
  timeoutMs: ms(30_000, 'timeout of an ordinary RPC call'),
  longpollTimeoutMs: ms(300_000, 'timeout of a getblocktemplate long poll'),
  maxSockets: int(1, 64, 4, 'concurrent ordinary calls to this daemon'),
});

const chain = z.strictObject({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be 1-64 of a-z 0-9 . _ - starting with a letter or digit')
    // events:{pool} is the pool-wide event stream: a chain named pool would share it.
    .refine((id) => id !== 'pool', '"pool" is reserved (the pool-wide event stream); choose another chain id')
    .optional()
    .describe('chain id in keys, jobs and service ids; default <coin>-<network>'),
  coin: z.enum(['litecoin', 'bitcoin']).default('litecoin').describe('coin'),
  network: z.enum(['main', 'test', 'regtest']).default('regtest').describe('network'),
  daemons: z.array(daemon).min(1).describe('coin daemons, tried in order; blocks are submitted to all'),
  payouts: z
    .array(
      z.strictObject({
        address: z.string().min(1).describe('payout address (checked against coin and network)'),
        valueSat: z
          .number()
          .int()
          .positive()
          .optional()
          .describe('exact amount in satoshis; at most one payout leaves it out and gets the rest'),
      }),
    )
    .min(1)
    .describe('where the block reward goes'),
  poolTag: z.string().max(64).default('/hashwire/').describe('text in every coinbase'),
  bind: z
    .string()
    .regex(/^[^:]*:\d{1,5}$/, 'must be host:port or :port')
    .optional()
    .describe(
      'public stratum+tcp address of this chain at HAProxy; default haproxy.bind for the first chain, needed for every further one',
    ),
  tlsBind: z
    .string()
    .regex(/^[^:]*:\d{1,5}$/, 'must be host:port or :port')
    .optional()
    .describe(
      'public stratum+ssl address of this chain (with haproxy.tls); default haproxy.tls.bind for the first chain, none for further ones',
    ),
  blocknotify: z
    .boolean()
    .default(false)
    .describe(
      "jobmanagers listen on the chain's blocknotify channel in Redis; point the daemons' -blocknotify at `hashwire render blocknotify`",
    ),
  longpoll: z
    .boolean()
    .default(true)
    .describe(
      'jobmanagers hold a getblocktemplate long poll open at each daemon (one daemon RPC thread each); false leaves new blocks to blocknotify, ZMQ and the poll',
    ),
  zmqHashblock: z
    .array(z.string().regex(/^tcp:\/\//, 'must be a tcp:// endpoint'))
    .default([])
    .describe('ZMQ hashblock endpoints of daemons built with ZMQ'),
  confirmations: int(1, 10_000, 100, 'confirmations after which a block counts as confirmed'),
  payments: z
    .strictObject({
      scheme: z
        .enum(['pplns', 'prop', 'solo'])
        .default('pplns')
        .describe(
          "pplns: the last N of difficulty before the block; prop: the block's round; solo: the finder's address in the coinbase (less the fee output), not in the ledger",
        ),
      pplnsFactor: z
        .number()
        .min(0.0001)
        .max(1000)
        .default(2)
        .describe('PPLNS window N = pplnsFactor × the network difficulty when the block was found'),
      feePercent: z
        .number()
        .min(0)
        .max(100)
        .refine((v) => Math.abs(Math.round(v * 100) - v * 100) < 1e-6, 'at most two decimals')
        .default(0)
        .describe(
          'pool fee in percent (at most two decimals), credited to feeAddress (solo: a coinbase output to feeAddress)',
        ),
      feeAddress: z
        .string()
        .min(1)
        .optional()
        .describe(
          'account paid the fee and the rounding remainders; default: kept by the pool (@pool), never paid; solo: the address of the coinbase fee output, required with a fee',
        ),
      minimumPayoutSat: z
        .number()
        .int()
        .min(1)
        .max(Number.MAX_SAFE_INTEGER)
        .default(10_000_000)
        .describe('an account is paid once its balance reaches this (satoshis)'),
      intervalS: int(1, 2 ** 31 - 1, 3600, 'seconds between two payment runs'),
      maturity: int(
        1,
        10_000,
        100,
        "confirmations before a block's reward is shared out (coinbase maturity)",
      ),
      walletDaemon: int(0, 63, 0, 'index in daemons of the daemon whose wallet pays'),
      wallet: z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 . _ -')
        .optional()
        .describe('wallet name on that daemon, when it has several loaded'),
      leaseTtlMs: ms(10_000, 'lease of the one payer of the chain'),
    })
    .optional()
    .describe('how miners are paid (the payer, `hashwire payouts`); none: the pool pays nobody'),
});

const curveKey = z
  .string()
  .regex(
    /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/,
    'must be a 40-character Z85 CURVE key (hashwire keys)',
  );
const curveService = (kind: string) =>
  z
    .strictObject({
      publicKey: curveKey.describe(`public key of every ${kind} (Z85, printed by hashwire keys)`),
      secretKeyFile: z
        .string()
        .min(1)
        .optional()
        .describe(`file holding the ${kind}s' secret key (mode 0600); needed on the hosts that run ${kind}s`),
    })
    .describe(`the ${kind}s' key pair`);

const rpc = section(
  {
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe(
        'address RPC sockets bind (and register); anything but 127.0.0.1, ::1, localhost needs rpc.curve',
      ),
    portRange: portRange(28000, 28999, 'RPC ports'),
    heartbeatIntervalMs: ms(1000, 'RPC heartbeat; every service uses the same'),
    curve: z
      .strictObject({
        jobmanager: curveService('jobmanager'),
        stratum: curveService('stratum server'),
        reporter: curveService('reporter'),
        allowedClientKeys: z
          .array(curveKey)
          .default([])
          .describe(
            'more client public keys the RPC servers let in, e.g. the old key of a kind during a rotation',
          ),
      })
      .optional()
      .describe(
        'CURVE keys (hashwire keys writes them): with them every RPC connection is encrypted and servers let in only these keys; required when rpc.host is not loopback',
      ),
  },
  'ZeroMQ RPC between the services',
);

const http = section(
  {
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe(
        'address every service binds its HTTP /healthz /stats /metrics on (0.0.0.0 for all); off loopback these read-only pages are open to whoever reaches the address, POST /drain still needs the admin token',
      ),
    portRange: portRange(29000, 29999, 'HTTP /healthz /stats /metrics ports'),
    adminTokenFile: z
      .string()
      .min(1)
      .default('var/admin.token')
      .describe(
        'file holding the token POST /drain needs (Authorization: Bearer); hashwire keys, up and run create it (0600) if missing',
      ),
  },
  "the services' HTTP status endpoints",
);

const discovery = section(
  { serviceTtlMs: ms(60_000, 'lifetime of a service registration without a refresh') },
  'service registration in Redis',
);

const jobmanager = section(
  {
    count: int(0, 64, 2, 'jobmanagers per chain (one leads, the others stand by)'),
    leaseTtlMs: ms(2000, 'leader lease: a dead leader is replaced within about this long'),
    pollIntervalMs: ms(500, 'getblocktemplate poll interval'),
    refreshIntervalMs: ms(30_000, 'template refresh (clean_jobs false) interval'),
    templateGraceMs: ms(
      20_000,
      'unhealthy (/healthz 503, healthy false to stratum) after this long without a template from a daemon',
    ),
    jobTtlMs: ms(900_000, 'how long a job stays in Redis for block submission'),
  },
  'jobmanagers: block templates to jobs, leader election, block submission',
);

const vardiff = section(
  {
    enabled: z.boolean().default(true).describe('adjust each miner to targetSharesPerMin'),
    targetSharesPerMin: z.number().positive().default(18).describe('share rate to aim for'),
    retargetMs: ms(60_000, 'window over which the rate is measured'),
    burstFactor: z
      .number()
      .positive()
      .default(4)
      .describe('cut a window short at this many times the expected shares'),
    minWindowMs: ms(5000, 'shortest window'),
    tolerance: z.number().positive().default(0.3).describe('no change within this fraction of the target'),
    maxStepFactor: z.number().min(1).default(4).describe('largest change of one retarget, as a factor'),
    initialDifficulty: z
      .number()
      .positive()
      .max(ShareLimits.maxDiff)
      .default(16)
      .describe('difficulty of a new session'),
    minDifficulty: z
      .number()
      .positive()
      .max(ShareLimits.maxDiff)
      .default(0.001)
      .describe('lowest difficulty'),
    maxDifficulty: z
      .number()
      .positive()
      .max(ShareLimits.maxDiff)
      .default(2 ** 32)
      .describe('highest difficulty (shares carry at most 1e15)'),
  },
  'variable difficulty',
);

const limits = section(
  {
    maxLineBytes: int(1, 1_048_576, 16_384, 'longest request line'),
    maxOutputBytes: int(1, 2 ** 31 - 1, 262_144, 'output buffered for a miner that does not read'),
    authTimeoutMs: ms(20_000, 'time from connect to a successful mining.authorize'),
    idleTimeoutMs: ms(600_000, 'time an authorized session may go without a submit'),
    maxConnectionsPerIp: int(0, 2 ** 31 - 1, 256, 'open connections per client address; 0: no limit'),
    maxConnections: int(0, 2 ** 31 - 1, 0, 'open connections per stratum server; 0: no limit'),
    maxProtocolErrors: int(0, 1_000_000, 20, 'malformed requests before the connection is closed'),
    maxWorkersPerConnection: int(0, 1_000_000, 16, 'workers one connection may authorize'),
    maxSubmitsInFlight: int(
      0,
      1_000_000,
      128,
      'submits of one connection waiting for their answer; one more is refused and counts toward the ban; 0: no limit',
    ),
    banInvalidRatio: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe(
        'bad submit ratio that bans an address (invalid, low difficulty, duplicate, unknown job, malformed, over the in-flight cap)',
      ),
    banCheckShares: int(0, 1_000_000, 40, "an address's submits seen before the ratio is checked"),
    banDurationMs: int(0, 2 ** 31 - 1, 600_000, 'how long a ban lasts (ms)'),
  },
  'per-connection and per-address limits',
);

const stratum = section(
  {
    count: int(0, 256, 2, 'stratum servers per chain'),
    host: z.string().min(1).default('0.0.0.0').describe('address the miner port binds'),
    advertiseHost: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe('address HAProxy uses to reach a stratum server bound to a wildcard host'),
    portRange: portRange(23000, 23999, 'miner ports'),
    agentPortRange: z
      .tuple([z.number().int().min(0).max(65535), z.number().int().min(0).max(65535)])
      .optional()
      .describe('HAProxy agent-check listener ports: [first, last]; default: the miner port range'),
    spoolDir: z
      .string()
      .min(1)
      .default('var/spool')
      .describe('spool folder base; each instance uses <spoolDir>/<instance id>'),
    extranonce1Size: int(
      3,
      8,
      4,
      'extranonce1 bytes (jobmanagers build coinbases with the same): a 2-byte extranonce slot plus 1–6 bytes of counter',
    ),
    extranonce2Size: int(1, 16, 4, 'extranonce2 bytes miners roll'),
    versionMask: int(0, 0xffffffff, 0x1fffe000, 'BIP310 version bits miners may roll'),
    ntimeMaxAheadSeconds: int(1, 86_400, 7200, 'how far a submitted ntime may run ahead of the job'),
    sessionTtlMs: ms(600_000, 'how long a disconnected session can be resumed'),
    spoolRejectedShares: z.boolean().default(true).describe('also spool rejected shares, for statistics'),
    trustedProxies: z
      .array(z.string().regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, 'must be an address or CIDR'))
      .default(['127.0.0.1/32', '::1/128'])
      .describe('addresses allowed to send a PROXY protocol header (HAProxy), as CIDRs'),
    flushTimeoutMs: ms(30_000, 'on stop, how long to wait for reporters to take the spool'),
    vardiff,
    limits,
    drain: section(
      {
        waveSize: int(1, 1_000_000, 500, 'sessions sent client.reconnect per wave'),
        waveIntervalMs: ms(1000, 'pause between two waves'),
        graceMs: ms(30_000, 'after the last wave, sessions still connected this long are closed'),
        reconnectTo: reconnectTarget
          .optional()
          .describe('where client.reconnect points; default: back through HAProxy'),
      },
      'what a stratum server does when it is drained',
    ),
    daemonLoss: section(
      {
        daemonGraceMs: ms(60_000, 'how long miners keep the last job once no jobmanager has a daemon'),
        graceMs: ms(10_000, 'after being sent away, sessions still connected this long are closed'),
        reconnectTo: reconnectTarget.optional().describe('a backup pool miners are sent to meanwhile'),
      },
      'what happens to miners while no coin daemon answers',
    ),
    spool: section(
      {
        batchIntervalMs: ms(1000, 'a batch is sealed at least this often'),
        batchMaxShares: int(1, 1_000_000, 5000, 'shares per batch at most'),
        sync: z.boolean().default(false).describe('fdatasync after each append (survives a machine crash)'),
      },
      'the share spool on disk',
    ),
    forwarder: section(
      {
        maxInFlightBatches: int(1, 1024, 4, 'spool batches being delivered at once'),
        requestTimeoutMs: ms(5000, 'deadline of one reporter.shares request'),
        retryDelayMs: ms(500, 'first wait before a batch every reporter failed is tried again'),
        maxRetryDelayMs: ms(10_000, 'longest such wait'),
        suspectMs: ms(5000, 'a reporter that failed is tried after the others for this long'),
        backlogWarnBatches: int(1, 1_000_000, 10, 'warn when this many batches wait'),
        maxRequestShares: int(
          1,
          1_000_000,
          5000,
          'shares one reporter.shares request carries at most (the sub-batches routed to one reporter go together)',
        ),
      },
      'delivery of spooled shares to reporters',
    ),
    ring: section(
      {
        buckets: int(1, 65_535, 100, 'buckets of the reporter ring'),
        bucketsPerAccount: int(1, 65_535, 3, "size of an account's subset of buckets"),
        virtualNodes: int(1, 65_536, 1024, 'points of each bucket on the ring'),
      },
      'reporter routing: the same on every stratum server',
    ),
  },
  'stratum servers: miner sessions, share validation, spool',
);

const payer = section(
  {
    count: int(
      0,
      16,
      1,
      'payers per chain with payments: one pays at a time (a lease), the others stand by to take over',
    ),
  },
  'the payer processes (`hashwire run payouts`); a chain without `payments` gets none',
);

const reporter = section(
  {
    count: int(0, 64, 2, 'reporters per chain'),
    blockPollMs: ms(10_000, 'how often block confirmations are polled'),
    candidateMaxAgeMs: ms(3_600_000, 'a block candidate that never settles is forgotten after this'),
    batchTtlS: int(
      1,
      2 ** 31 - 1,
      86_400,
      "how long a stratum spool's acknowledged sub-batches are remembered after its last credit (s)",
    ),
    maxBatchShares: int(1, 10_000_000, 20_000, 'bigger sub-batches are refused'),
    shareLogRetentionS: int(1, 2 ** 31 - 1, 600, 'share log entries older than this are deleted (s)'),
    shareLogMaxBatches: int(
      1,
      100_000_000,
      100_000,
      'share log entries (one per request) kept at most, on top of shareLogRetentionS',
    ),
    eventsMaxLen: int(1, 100_000_000, 100_000, "entries kept in each chain's events stream"),
    replicas: int(
      0,
      64,
      1,
      "Redis replicas a credit must reach (WAIT) before its batch is acknowledged, or all the chain's Redis node has when it has fewer; 0: never wait",
    ),
    replicaWaitMs: ms(
      1000,
      'how long a credit waits for its replicas; then the batch is not acknowledged and comes again',
    ),
  },
  'reporters: share accounting, rounds, block lifecycle',
);

/*
 * The api service: one section for everything about it, so the options of its later parts
 * (rate limits, watches, the stream) sit beside these as sub-sections.
 */
const api = section(
  {
    count: int(
      0,
      64,
      1,
      'api instances (ids api-1 … api-N; the api is pool-wide, not per chain); 0 runs none',
    ),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe(
        'address the API binds; off loopback, membership writes need an API token (or api.openGroups)',
      ),
    advertiseHost: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe('address registered (and used by HAProxy) when api.host is a wildcard'),
    portRange: portRange(24000, 24999, 'API ports'),
    bind: z
      .string()
      .regex(/^[^:]*:\d{1,5}$/, 'must be host:port or :port')
      .default('127.0.0.1:8080')
      .describe(
        'public HTTP address of the API at HAProxy (with haproxy.enabled): one frontend for every api instance',
      ),
    backend: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'must be letters, digits, _ . -')
      .default('api')
      .describe('HAProxy backend name of the api instances'),
    maxBodyBytes: int(1, 16_777_216, 65_536, 'largest request body (bytes); a larger one gets 413'),
    openGroups: z
      .boolean()
      .default(false)
      .describe(
        'let membership writes (join, heartbeat, leave, configs) through without an API token, for a trusted network; off by default',
      ),
    trustedProxies: z
      .array(z.string().min(1))
      .default(['127.0.0.1', '::1'])
      .describe(
        "addresses whose X-Forwarded-For the API trusts for the client address its rate limit counts by (HAProxy's)",
      ),
    logLevel: z
      .enum(LOG_LEVELS as [string, ...string[]])
      .optional()
      .describe('log level of the api instances; default log.level'),
    tokenCacheMs: ms(
      5000,
      'how long an instance remembers a looked-up API token; a revocation still applies everywhere within 1 s',
    ),
    rateLimit: section(
      {
        enabled: z
          .boolean()
          .default(true)
          .describe('limit requests per token (or per client address without one)'),
        max: int(1, 1_000_000_000, 600, 'requests per window per token or client address; more get 429'),
        windowMs: ms(60_000, 'the rate limit window'),
      },
      'request rate limit, counted in Redis and shared by every api instance',
    ),
    watches: section(
      {
        deliver: z.boolean().default(true).describe('deliver watches from these instances'),
        retryWindowMs: ms(14_400_000, 'how long a failing endpoint is retried before its watch is removed'),
        retryBaseMs: ms(1000, 'first retry delay, doubled after each failure'),
        retryMaxDelayMs: ms(600_000, 'longest delay between two attempts'),
        leaseMs: int(
          300,
          2 ** 31 - 1,
          10_000,
          "a watch's delivery lease; a dead instance's watches move after it (ms)",
        ),
        deliveryTimeoutMs: ms(10_000, "one delivery's time limit (connect and answer)"),
        outboxMaxLen: int(1, 100_000_000, 10_000, "entries a ws watch's outbox stream keeps (approximately)"),
      },
      'watches (POST /v1/watches): delivery, retries, leases',
    ),
    stream: section(
      {
        maxBufferedBytes: int(
          1,
          2 ** 31 - 1,
          4_194_304,
          'bytes unsent to one WebSocket before it is closed as too slow',
        ),
        maxPendingEvents: int(
          1,
          10_000_000,
          10_000,
          'events held for one connection during catch-up before it is closed',
        ),
        maxTopicsPerConnection: int(1, 1_000_000, 1000, 'topics one connection may subscribe to'),
        checkpointMs: ms(1000, 'how often a client is told its positions moved'),
        pingMs: ms(30_000, 'WebSocket ping interval'),
        maxMessageBytes: int(1, 16_777_216, 65_536, 'largest message a client may send (bytes)'),
      },
      'the live stream (GET /v1/stream, WebSocket): limits per connection',
    ),
  },
  'the api service: the HTTP read API, membership groups, tokens, watches and the live stream, behind HAProxy',
);

const haproxy = section(
  {
    enabled: z.boolean().default(true).describe('run HAProxy in front of the stratum servers (hashwire up)'),
    binary: z.string().min(1).default('haproxy').describe('haproxy executable'),
    bind: z
      .string()
      .regex(/^[^:]*:\d{1,5}$/, 'must be host:port or :port')
      .default(':3333')
      .describe('public stratum+tcp address of the first chain (chains[].bind for the others)'),
    tls: z
      .strictObject({
        bind: z
          .string()
          .regex(/^[^:]*:\d{1,5}$/, 'must be host:port or :port')
          .default(':3334')
          .describe('public stratum+ssl address of the first chain (chains[].tlsBind for the others)'),
        certFile: z.string().min(1).describe('PEM with certificate and key'),
      })
      .optional()
      .describe('TLS termination (stratum+ssl)'),
    statsSocket: z.string().min(1).default('var/haproxy.sock').describe('runtime API socket'),
    masterSocket: z
      .string()
      .min(1)
      .default('var/haproxy-master.sock')
      .describe('master CLI socket (haproxy -W -S): show proc, and reload without dropping a connection'),
    statsBind: z
      .string()
      .regex(/^[^:]*:\d{1,5}$/, 'must be host:port or :port')
      .optional()
      .describe('HTTP stats page address; none by default'),
    backend: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'must be letters, digits, _ . -')
      .default('stratum')
      .describe('backend name'),
    maxconn: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .optional()
      .describe('connections HAProxy accepts; default: what ulimit -n allows (about two descriptors each)'),
    checkIntervalMs: ms(2000, 'health and agent check interval'),
    rise: int(1, 100, 2, 'successful checks before a server is up'),
    fall: int(1, 100, 3, 'failed checks before a server is down'),
    configFile: z
      .string()
      .min(1)
      .default('var/haproxy.cfg')
      .describe('where hashwire up writes the rendered config'),
  },
  'HAProxy, the public face for miners',
);

const log = section(
  {
    level: z
      .enum(LOG_LEVELS as [string, ...string[]])
      .default('info')
      .describe('log level of every service'),
  },
  'logging',
);

const statsd = section(
  {
    enabled: z.boolean().default(false).describe('mirror the metrics to statsd'),
    host: z.string().min(1).default('127.0.0.1').describe('statsd host'),
    port: port.default(8125).describe('statsd port'),
    prefix: z.string().default('hashwire.').describe('put before every name'),
    tagFormat: z.enum(['datadog', 'telegraf']).default('datadog').describe('tag syntax'),
    tags: z.record(z.string(), z.string()).default({}).describe('tags on every line'),
  },
  'statsd',
);

const circus = section(
  {
    workingDir: z.string().min(1).default('.').describe('working folder of the watchers'),
    logDir: z.string().min(1).default('var/log').describe("folder of the services' output"),
    logMaxMB: int(1, 100_000, 50, '`hashwire up` rotates a log file once it holds this many MiB'),
    logKeep: int(1, 100, 5, '`hashwire up` keeps this many rotated files per log (`name.log.1` newest)'),
    gracefulTimeoutS: section(
      {
        jobmanager: int(1, 3600, 15, 'jobmanager stop deadline (s)'),
        stratum: int(1, 3600, 90, 'stratum stop deadline (s): drain waves, grace and spool flush'),
        reporter: int(1, 3600, 30, 'reporter stop deadline (s)'),
        api: int(1, 3600, 10, 'api stop deadline (s)'),
        payouts: int(1, 3600, 30, 'payer stop deadline (s): a payment under way is recorded first'),
      },
      'how long Circus waits after SIGTERM before SIGKILL',
    ),
  },
  'Circus (hashwire render circus)',
);

export const poolConfigSchema = z
  .strictObject({
    redis,
    chains: z.array(chain).min(1).describe('the chains the pool mines; each gets its own services'),
    rpc,
    http,
    discovery,
    jobmanager,
    stratum,
    reporter,
    payer,
    api,
    haproxy,
    log,
    statsd,
    circus,
  })
  .describe('a whole hashwire pool');

export type PoolConfigInput = z.input<typeof poolConfigSchema>;
type Parsed = z.output<typeof poolConfigSchema>;
export type ChainConfig = Omit<Parsed['chains'][number], 'id'> & { id: string };
/** A loaded, checked pool config: every default filled in, relative paths made absolute. */
export type PoolConfig = Omit<Parsed, 'chains'> & { chains: ChainConfig[] };
