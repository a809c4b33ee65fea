import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { type Principal, type TokenRecord, audit, createTokenStore, tokenRequest } from '@hashwire/api';
import {
  type Registry,
  RegistryUnreachableError,
  RegistryUsageError,
  openRegistry,
  registryArgs,
  registryTargetOrReport,
} from './status.js';

export const tokensUsage = `usage: hashwire tokens create|list|revoke [--config FILE | --redis URL --prefix P]

Manages the api's tokens in Redis directly, so the first one needs no api and no token. Tokens are
stored as their SHA-256 only: create prints a token once (stdout; what it made on stderr), and it
cannot be shown again. Each create and revoke is recorded in the audit trail (admin.token.*, actor
"cli"). Revoking takes effect on every api instance within 1 s.

  hashwire tokens create --kind admin|read|account --name NAME [--account ADDR] [--expires-in SECONDS] [--json]
  hashwire tokens list [--json]
  hashwire tokens revoke <token-id>

  --config FILE        the pool config: its redis.url and redis.keyPrefix
  --redis URL          Redis (default redis://127.0.0.1:6379)
  --prefix P           key prefix (default hw:)
  --kind K             admin (everything), read (every read, membership writes) or account (one account's reads)
  --name NAME          who holds it (shown in lists and in the audit trail)
  --account ADDR       the account an account token reads
  --expires-in SECONDS stop working after this long (default: until revoked)
  --json               print JSON (create: the record with its token)`;

/** Which flag a field of the token request comes from, for messages. */
const FLAG_OF: Record<string, string> = {
  kind: '--kind',
  name: '--name',
  account: '--account',
  expiresInS: '--expires-in',
};

function date(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function formatTokenTable(records: readonly TokenRecord[]): string {
  const rows = [
    ['ID', 'KIND', 'NAME', 'ACCOUNT', 'CREATED', 'EXPIRES'],
    ...records.map((r) => [r.id, r.kind, r.name, r.account ?? '-', date(r.createdAt), date(r.expiresAt)]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Who acts when no token is involved: the CLI, on this host as this user. */
function cliActor(): Principal {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container): the host still says where.
  }
  return { kind: 'admin', tokenId: 'cli', name: `hashwire tokens (${user}@${hostname()})` };
}

/** `hashwire tokens create|list|revoke`. */
export async function tokensCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...registryArgs,
      kind: { type: 'string' },
      name: { type: 'string' },
      account: { type: 'string' },
      'expires-in': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${tokensUsage}\n`);
    return 0;
  }
  const [action, ...rest] = positionals;
  if (action !== 'create' && action !== 'list' && action !== 'revoke')
    throw new RegistryUsageError(`tokens takes create, list or revoke, got ${action ?? 'nothing'}`);
  if (action === 'revoke' && rest.length !== 1)
    throw new RegistryUsageError(
      `tokens revoke takes one token id (hashwire tokens list shows them), got ${rest.length}`,
    );
  if (action !== 'revoke' && rest.length > 0)
    throw new RegistryUsageError(`tokens ${action} takes no positional argument, got ${rest.join(' ')}`);

  let request: ReturnType<typeof tokenRequest.parse> | undefined;
  if (action === 'create') {
    const expires = values['expires-in'];
    const parsed = tokenRequest.safeParse({
      kind: values.kind,
      name: values.name,
      ...(values.account !== undefined && { account: values.account }),
      ...(expires !== undefined && { expiresInS: /^\d+$/.test(expires) ? Number(expires) : expires }),
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = String(issue.path[0] ?? '');
      const shown = issue.code === 'invalid_type' && issue.input === undefined ? 'required' : issue.message;
      throw new RegistryUsageError(`${FLAG_OF[field] ?? field}: ${shown}`);
    }
    request = parsed.data;
  } else {
    for (const flag of ['kind', 'name', 'account', 'expires-in'] as const)
      if (values[flag] !== undefined) throw new RegistryUsageError(`--${flag} is for tokens create only`);
  }

  const target = registryTargetOrReport(values, 'tokens');
  if (!target) return 1;
  let registry: Registry | undefined;
  try {
    registry = await openRegistry(target, 'hashwire-tokens');
    const { redis, keys } = registry;
    const store = createTokenStore(redis, keys);
    if (request) {
      const { token, record } = await store.create(request);
      await audit(redis, keys, cliActor(), 'token.create', record.id, {
        kind: record.kind,
        name: record.name,
        ...(record.account !== undefined && { account: record.account }),
      });
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ ...record, token })}\n`);
      } else {
        const scope = record.account !== undefined ? ` for account ${record.account}` : '';
        process.stderr.write(
          `made ${record.kind} token ${record.id} "${record.name}"${scope}; the token is shown only now:\n`,
        );
        process.stdout.write(`${token}\n`);
      }
      return 0;
    }
    if (action === 'list') {
      const records = await store.list();
      process.stdout.write(values.json ? `${JSON.stringify(records)}\n` : `${formatTokenTable(records)}\n`);
      return 0;
    }
    const id = rest[0] as string;
    const record = await store.revoke(id);
    if (!record) {
      process.stderr.write(`hashwire tokens: no token ${id} (hashwire tokens list shows them)\n`);
      return 1;
    }
    await audit(redis, keys, cliActor(), 'token.revoke', record.id, { kind: record.kind, name: record.name });
    process.stdout.write(
      `revoked ${record.kind} token ${record.id} "${record.name}"; every api instance refuses it within 1 s\n`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof RegistryUnreachableError)) throw error;
    process.stderr.write(`hashwire tokens: ${error.message}\n`);
    return 1;
  } finally {
    registry?.close();
  }
}
