import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, StartupError, ensureAdminTokenFile } from '@hashwire/core';
import { PoolUsageError, configErrorText, poolArgOptions, withPool } from './config-cmd.js';
import { SERVICE_RUN_KINDS, type ServiceRunKind, checkPoolSecrets, serviceConfigs } from './pool.js';

export const runUsage = `usage: hashwire run jobmanager|stratum|reporter|api|payouts --instance N [--config FILE] [--set PATH=VALUE ...]

Runs one service instance of the pool in this process, with the options the pool config gives
it: instances are numbered from 1 within a kind, chain after chain (count per chain × chains);
the id is <kind>-<chain>-<k>. The api serves every chain: api.count instances, ids api-<k>.
Payers (payouts) run only for the chains with a payments section: payer.count per such chain,
numbered among them. This is what Circus and "hashwire up" execute. SIGTERM or SIGINT
stop it the way its kind needs (drain, hand over, flush) and exit 0.`;

/** Each kind's built bin, found beside this package (`src/` under vitest, `dist/` when built). */
export const SERVICE_BINS: Record<ServiceRunKind, string> = {
  jobmanager: fileURLToPath(new URL('../../jobmanager/dist/bin.js', import.meta.url)),
  // The stratum master: it runs the stratum bin as its worker, replaced by `hashwire upgrade stratum`.
  stratum: fileURLToPath(new URL('../../stratum/dist/master-bin.js', import.meta.url)),
  reporter: fileURLToPath(new URL('../../reporter/dist/bin.js', import.meta.url)),
  api: fileURLToPath(new URL('../../api/dist/bin.js', import.meta.url)),
  payouts: fileURLToPath(new URL('../../payouts/dist/bin.js', import.meta.url)),
};

/** The variable each bin reads its JSON config from. */
export const SERVICE_CONFIG_ENV: Record<ServiceRunKind, string> = {
  jobmanager: 'HASHWIRE_JOBMANAGER_CONFIG',
  stratum: 'HASHWIRE_STRATUM_CONFIG',
  reporter: 'HASHWIRE_REPORTER_CONFIG',
  api: 'HASHWIRE_API_CONFIG',
  payouts: 'HASHWIRE_PAYOUTS_CONFIG',
};

function isKind(kind: string | undefined): kind is ServiceRunKind {
  return SERVICE_RUN_KINDS.includes(kind as ServiceRunKind);
}

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...poolArgOptions,
      instance: { type: 'string', short: 'i' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(`${runUsage}\n`);
    return 0;
  }
  const [kind, ...extra] = positionals;
  if (!isKind(kind) || extra.length > 0) {
    throw new PoolUsageError(
      `run needs one service kind: ${SERVICE_RUN_KINDS.join(', ')}${kind ? `, got "${[kind, ...extra].join(' ')}"` : ''}`,
    );
  }
  const instance = Number(values.instance);
  if (values.instance === undefined || !Number.isInteger(instance) || instance < 1) {
    throw new PoolUsageError(
      `--instance must be a whole number from 1${values.instance ? `, got "${values.instance}"` : ''}`,
    );
  }
  return withPool(values, async ({ pool }) => {
    const instances = serviceConfigs(pool).filter((s) => s.kind === kind);
    const service = instances.find((s) => s.instance === instance);
    if (!service) {
      const range = instances.length > 0 ? `1 to ${instances.length}` : `none (${kind}.count is 0)`;
      process.stderr.write(`run: no ${kind} instance ${instance} in this pool; instances: ${range}\n`);
      return 1;
    }
    const secretIssues = checkPoolSecrets(pool, [kind]);
    if (secretIssues.length > 0) {
      process.stderr.write(configErrorText(new ConfigError(secretIssues)));
      return 1;
    }
    // POST /drain needs the token; the first service on a host makes it (hashwire keys may have).
    try {
      ensureAdminTokenFile(pool.http.adminTokenFile);
    } catch (error) {
      if (!(error instanceof StartupError)) throw error;
      process.stderr.write(`run: ${error.message}\n`);
      return 1;
    }
    const bin = SERVICE_BINS[kind];
    if (!existsSync(bin)) {
      process.stderr.write(`run: ${bin} is missing: build first (pnpm build)\n`);
      return 1;
    }
    // The bin is the service as Circus or a shell would run it: its config in its variable, no
    // arguments (it would take the first one for a config file), its own exit code.
    process.env[SERVICE_CONFIG_ENV[kind]] = JSON.stringify(service.config);
    process.argv = [process.argv[0] as string, bin];
    process.title = `hashwire ${service.id}`;
    const exited = new Promise<number>((resolve) => {
      process.once('beforeExit', () => resolve(Number(process.exitCode ?? 0)));
    });
    await import(pathToFileURL(bin).href);
    return exited;
  });
}
