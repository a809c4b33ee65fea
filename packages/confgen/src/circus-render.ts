import { z } from 'zod';
import { compileTemplate, oneLine, parseInput, positiveInt, word } from './input.js';

export const SERVICE_KINDS = ['jobmanager', 'reporter', 'stratum', 'api', 'payouts'] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];
/** What a Circus watcher runs: a service kind, HAProxy, or the follower keeping HAProxy's backend. */
export const CIRCUS_WATCHER_KINDS = [...SERVICE_KINDS, 'haproxy', 'follower'] as const;
export type CircusWatcherKind = (typeof CIRCUS_WATCHER_KINDS)[number];

/**
 * Per kind: how long Circus waits after SIGTERM before SIGKILL, the start priority (higher
 * starts first, stops last) and what the graceful stop does. Stratum needs the longest: miners
 * are sent away in waves, then the spool is flushed to the reporters (30 s at most).
 */
export const CIRCUS_KIND_DEFAULTS: Record<
  CircusWatcherKind,
  { gracefulTimeoutSec: number; priority: number; stopNote: string; stopSignal?: string }
> = {
  // HAProxy first and last: the follower and the stratum servers' drain need it running.
  haproxy: {
    gracefulTimeoutSec: 5,
    priority: 50,
    stopNote: 'SIGUSR1 is its soft stop: listeners closed, exits once its connections are gone',
    stopSignal: 'SIGUSR1',
  },
  follower: { gracefulTimeoutSec: 5, priority: 40, stopNote: 'HAProxy keeps the servers it has' },
  jobmanager: { gracefulTimeoutSec: 15, priority: 30, stopNote: 'leadership handed to a standby' },
  reporter: { gracefulTimeoutSec: 30, priority: 20, stopNote: 'stops taking batches and flushes' },
  stratum: {
    gracefulTimeoutSec: 90,
    priority: 10,
    stopNote: 'miners sent away in waves, spool flushed to reporters',
  },
  api: { gracefulTimeoutSec: 10, priority: 5, stopNote: 'stops taking requests' },
  payouts: {
    gracefulTimeoutSec: 30,
    priority: 15,
    stopNote: 'a payment under way is recorded, the payer lease is given up',
  },
};

/** One Circus watcher: `numprocesses` copies of one service kind. */
export interface CircusWatcher {
  kind: CircusWatcherKind;
  /** Watcher name. @defaultValue the kind */
  name?: string;
  /**
   * The command, e.g. `/usr/bin/node /opt/hashwire/packages/cli/dist/bin.js run stratum
   * --config /etc/hashwire/pool.toml --instance $(circus.wid)` (Circus numbers copies from 1).
   */
  cmd: string;
  numprocesses: number;
  /** @defaultValue by kind, see CIRCUS_KIND_DEFAULTS */
  gracefulTimeoutSec?: number;
  /** @defaultValue by kind, see CIRCUS_KIND_DEFAULTS */
  priority?: number;
  /** Pause between starting two copies. @defaultValue 0 */
  warmupDelaySec?: number;
  /** Environment of this watcher's processes, on top of the shared `env` and Circus's own (copy_env). */
  env?: Record<string, string>;
}

/** Everything `renderCircus` needs; a plain object the CLI maps the pool config into. */
export interface CircusRenderInput {
  /** Working directory of every process (the hashwire checkout or install). */
  workingDir: string;
  /** stdout/stderr of watcher W go to `<logDir>/W.out.log` and `<logDir>/W.err.log`. */
  logDir: string;
  watchers: CircusWatcher[];
  /** Environment shared by every watcher. @defaultValue {} */
  env?: Record<string, string>;
  /** @defaultValue 'tcp://127.0.0.1:5555' */
  endpoint?: string;
  /** @defaultValue 'tcp://127.0.0.1:5556' */
  pubsubEndpoint?: string;
  /** @defaultValue 5 */
  checkDelaySec?: number;
  /** Log file size before rotation. @defaultValue 10485760 */
  logMaxBytes?: number;
  /** @defaultValue 5 */
  logBackups?: number;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const envSchema = z.record(z.string(), oneLine('an environment value')).superRefine((env, ctx) => {
  for (const key of Object.keys(env)) {
    if (!ENV_NAME.test(key))
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: 'must be a variable name: letters, digits and _',
      });
  }
});
const seconds = z.number({ error: 'must be a number of seconds' }).min(0, 'must be 0 or more');

const watcherSchema = z
  .object({
    kind: z.enum(CIRCUS_WATCHER_KINDS, { error: `must be one of ${CIRCUS_WATCHER_KINDS.join(', ')}` }),
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, "must be letters, digits, '_', '.' or '-'")
      .optional(),
    cmd: oneLine('a command').min(1, 'must not be empty (a command)'),
    numprocesses: z.number().int('must be a whole number').min(0, 'must be 0 or more'),
    gracefulTimeoutSec: seconds.optional(),
    priority: z.number().int('must be a whole number').optional(),
    warmupDelaySec: seconds.default(0),
    env: envSchema.default({}),
  })
  .strict();

const inputSchema = z
  .object({
    workingDir: word('a directory'),
    logDir: word('a directory'),
    watchers: z.array(watcherSchema).min(1, 'must list at least one watcher'),
    env: envSchema.default({}),
    endpoint: word('a ZeroMQ endpoint').default('tcp://127.0.0.1:5555'),
    pubsubEndpoint: word('a ZeroMQ endpoint').default('tcp://127.0.0.1:5556'),
    checkDelaySec: seconds.default(5),
    logMaxBytes: positiveInt('bytes').default(10_485_760),
    logBackups: z.number().int().min(0, 'must be 0 or more').default(5),
  })
  .strict()
  .superRefine((input, ctx) => {
    const seen = new Set<string>();
    input.watchers.forEach((w, i) => {
      const name = w.name ?? w.kind;
      if (seen.has(name))
        ctx.addIssue({
          code: 'custom',
          path: ['watchers', i, w.name ? 'name' : 'kind'],
          message: `duplicate watcher name ${name} (give one of them a name)`,
        });
      seen.add(name);
    });
  });

let template: HandlebarsTemplateDelegate | undefined;

/** circus.ini with one watcher per entry of `watchers`; throws RenderInputError naming each bad field. */
export function renderCircus(input: CircusRenderInput): string {
  const v = parseInput('circus', inputSchema, input);
  template ??= compileTemplate(new URL('../../../circus/circus.ini.hbs', import.meta.url));
  return template({
    endpoint: v.endpoint,
    pubsubEndpoint: v.pubsubEndpoint,
    checkDelaySec: v.checkDelaySec,
    workingDir: v.workingDir,
    logDir: v.logDir.replace(/\/+$/, '') || '/',
    logMaxBytes: v.logMaxBytes,
    logBackups: v.logBackups,
    watchers: v.watchers.map((w) => {
      const defaults = CIRCUS_KIND_DEFAULTS[w.kind];
      const env = { ...v.env, ...w.env };
      return {
        name: w.name ?? w.kind,
        cmd: w.cmd,
        numprocesses: w.numprocesses,
        priority: w.priority ?? defaults.priority,
        warmupDelaySec: w.warmupDelaySec,
        gracefulTimeoutSec: w.gracefulTimeoutSec ?? defaults.gracefulTimeoutSec,
        stopNote: defaults.stopNote,
        stopSignal: defaults.stopSignal ?? 'SIGTERM',
        env: Object.keys(env)
          .sort()
          .map((key) => ({ key, value: env[key] })),
      };
    }),
  });
}
