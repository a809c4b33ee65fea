import { z } from 'zod';
import { oneLine, parseInput, positiveInt } from './input.js';

/*
 * systemd units for a pool run without `hashwire up`: one `.service` per service instance and
 * one for the HAProxy follower, all `PartOf` a `.target` that starts and stops them together.
 * Stop order is start order reversed, so stratum servers (ordered after everything else) drain
 * first, while HAProxy's follower and the reporters they flush to still run.
 */

/** One unit: a process systemd starts, stops with SIGTERM and restarts when it ends. */
export interface SystemdService {
  /** Unit name without `.service`, e.g. `hashwire-stratum-litecoin-1`. */
  name: string;
  description: string;
  /** The command and its arguments; the first must be an absolute path. */
  exec: string[];
  /**
   * Seconds between SIGTERM and SIGKILL: the service's whole graceful stop plus a margin (for a
   * stratum server the drain waves, the grace and the spool flush). systemd's default, 90 s, cuts
   * a stratum drain short.
   */
  timeoutStopSec: number;
  /** Other units of this render (names without `.service`) this one starts after and stops before. */
  after?: string[];
  /** Units outside this render it is ordered after when they exist, e.g. `redis-server.service`. */
  afterExternal?: string[];
  env?: Record<string, string>;
}

export interface SystemdRenderInput {
  /** The target every unit is part of. @defaultValue 'hashwire' */
  target?: string;
  /** Working directory of every process (relative paths of the pool config resolve from its file). */
  workingDir: string;
  /** Run as this user (and its group) instead of root. */
  user?: string;
  services: SystemdService[];
}

const UNIT_NAME = /^[A-Za-z0-9:_.\\-]+$/;
const unitName = z
  .string({ error: 'must be a unit name' })
  .regex(UNIT_NAME, "must be a unit name: letters, digits, ':', '_', '.', '-'");
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const serviceSchema = z
  .object({
    name: unitName,
    description: oneLine('a description').min(1, 'must not be empty'),
    exec: z
      .array(oneLine('an argument'), { error: 'must be a list of arguments' })
      .min(1, 'must name the program')
      .refine((argv) => argv[0]?.startsWith('/'), 'the program must be an absolute path (systemd needs one)'),
    timeoutStopSec: positiveInt('seconds'),
    after: z.array(unitName).default([]),
    afterExternal: z.array(unitName).default([]),
    env: z
      .record(
        z.string().regex(ENV_NAME, 'must be a variable name: letters, digits and _'),
        oneLine('a value'),
      )
      .default({}),
  })
  .strict();

const inputSchema = z
  .object({
    target: unitName.default('hashwire'),
    workingDir: oneLine('a directory').refine((d) => d.startsWith('/'), 'must be an absolute path'),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]*\$?$/, 'must be a user name')
      .optional(),
    services: z.array(serviceSchema).min(1, 'must list at least one service'),
  })
  .strict()
  .superRefine((input, ctx) => {
    const names = new Set(input.services.map((s) => s.name));
    input.services.forEach((s, i) => {
      s.after.forEach((other, j) => {
        if (!names.has(other))
          ctx.addIssue({
            code: 'custom',
            path: ['services', i, 'after', j],
            message: `no service ${other} in this render`,
          });
      });
    });
    if (names.size !== input.services.length)
      ctx.addIssue({ code: 'custom', path: ['services'], message: 'two services have the same name' });
  });

/** A word quoted for systemd.syntax(7) when it has to be: spaces, quotes, backslashes, empty. */
function quoted(escaped: string): string {
  if (escaped !== '' && /^[A-Za-z0-9_@+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/**
 * One word of a unit's command line as systemd reads it back: `%` and `$` doubled (no specifier
 * or variable expansion), quoted when it has spaces or quotes.
 */
export function systemdWord(word: string): string {
  return quoted(word.replaceAll('%', '%%').replaceAll('$', '$$$$'));
}

/**
 * `KEY=value` for `Environment=`, quoted as a whole. Only `%` is doubled: systemd expands
 * specifiers there but no variables ("the $ character has no special meaning", systemd.exec(5)),
 * so a doubled `$` would reach the process doubled.
 */
function environmentLine(key: string, value: string): string {
  return `Environment=${quoted(`${key}=${value}`.replaceAll('%', '%%'))}`;
}

/** The unit files by file name: each service's, and the target's. Throws RenderInputError naming each bad field. */
export function renderSystemd(input: SystemdRenderInput): Record<string, string> {
  const v = parseInput('systemd', inputSchema, input);
  const target = `${v.target}.target`;
  const files: Record<string, string> = {};
  for (const s of v.services) {
    const after = ['network-online.target', ...s.afterExternal, ...s.after.map((name) => `${name}.service`)];
    const lines = [
      '# Rendered by hashwire (hashwire render systemd). Do not edit by hand: change the pool config',
      '# and render again.',
      '[Unit]',
      `Description=${s.description}`,
      'Wants=network-online.target',
      `After=${after.join(' ')}`,
      `PartOf=${target}`,
      '',
      '[Service]',
      'Type=simple',
      `WorkingDirectory=${v.workingDir}`,
      ...(v.user ? [`User=${v.user}`] : []),
      ...Object.keys(s.env)
        .sort()
        .map((key) => environmentLine(key, s.env[key] as string)),
      `ExecStart=${s.exec.map(systemdWord).join(' ')}`,
      '# SIGTERM is the graceful stop; SIGKILL (to every process of the unit) only after',
      "# TimeoutStopSec. systemd's default of 90 s is too short for a stratum server's drain.",
      'KillSignal=SIGTERM',
      'KillMode=mixed',
      `TimeoutStopSec=${s.timeoutStopSec}`,
      // An exit 0 on its own (after `hashwire drain`) is restarted as well, as `hashwire up` does.
      'Restart=always',
      'RestartSec=2',
      'NoNewPrivileges=yes',
      '',
      '[Install]',
      `WantedBy=${target}`,
      '',
    ];
    files[`${s.name}.service`] = lines.join('\n');
  }
  files[target] = [
    '# Rendered by hashwire (hashwire render systemd).',
    '[Unit]',
    'Description=hashwire pool (every service of this host)',
    `Wants=${v.services.map((s) => `${s.name}.service`).join(' ')}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
  return files;
}
