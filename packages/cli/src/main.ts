/** Raised for a bad command line: printed as one line with the usage hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

// Each command is loaded when it runs: one command's module failing to load (or being slow to
// load) never stands in the way of another, e.g. of `run`, which Circus and `up` execute.
const commands: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  demo: {
    summary:
      'a whole pool locally: redis, 2 litecoind, HAProxy on :3333, 2 each of jobmanager/reporter/stratum, 20 sim miners through HAProxy',
    run: async (argv) => (await import('./demo.js')).demoCommand(argv),
  },
  bench: {
    summary: 'run benchmark suites (table, --json FILE)',
    run: async (argv) => (await import('./bench.js')).benchCommand(argv),
  },
  sim: {
    summary: 'run simulated stratum miners against a pool (--port P --username ADDR)',
    run: async (argv) => (await import('./sim.js')).simCommand(argv),
  },
  config: {
    summary: 'check the pool config (config check: every problem with its key path) or show it with defaults',
    run: async (argv) => (await import('./config-cmd.js')).configCommand(argv),
  },
  run: {
    summary: 'run one service instance of the pool config (what Circus and up execute)',
    run: async (argv) => (await import('./run.js')).runCommand(argv),
  },
  render: {
    summary:
      'render haproxy.cfg (with the live stratum servers), circus.ini (HAProxy and its follower included) or systemd units from the pool config',
    run: async (argv) => (await import('./render.js')).renderCommand(argv),
  },
  'follow-haproxy': {
    summary:
      "keep HAProxy's stratum backend of each chain equal to the live stratum servers (runtime API), as its own process",
    run: async (argv) => (await import('./follow-haproxy.js')).followHaproxyCommand(argv),
  },
  up: {
    summary:
      'run the pool of the config locally: HAProxy and every service, supervised; Ctrl-C stops in order',
    run: async (argv) => (await import('./up.js')).upCommand(argv),
  },
  status: {
    summary: 'a table of the live services in the registry (--json)',
    run: async (argv) => (await import('./status.js')).statusCommand(argv),
  },
  keys: {
    summary:
      'make the CURVE key pairs of the services and the admin token (0600 files) and print the config that uses them',
    run: async (argv) => (await import('./keys.js')).keysCommand(argv),
  },
  payouts: {
    summary: 'payments of a chain: status, audit (the books to the satoshi), pay-now, run (the payer)',
    run: async (argv) => (await import('./payouts.js')).payoutsCommand(argv),
  },
  drain: {
    summary: 'drain one live service the way its kind needs and follow it until it left',
    run: async (argv) => (await import('./drain.js')).drainCommand(argv),
  },
  upgrade: {
    summary:
      'replace the stratum code of a running stratum service without closing a miner connection (upgrade stratum <id>)',
    run: async (argv) => (await import('./upgrade.js')).upgradeCommand(argv),
  },
  reload: {
    summary:
      'reload HAProxy without closing or refusing a connection: haproxy.cfg from the registry, then the master CLI (reload haproxy)',
    run: async (argv) => (await import('./reload.js')).reloadCommand(argv),
  },
  tokens: {
    summary: 'make, list and revoke api tokens (admin, read, account) in Redis; a token is printed once',
    run: async (argv) => (await import('./tokens.js')).tokensCommand(argv),
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const list = Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join('\n');
  const script = [
    `  ${'test'.padEnd(width)}  run the whole test suite (./hashwire test)`,
    `  ${'circusd'.padEnd(width)}  run circusd on a rendered circus.ini, installing Circus first when missing (./hashwire circusd FILE)`,
  ].join('\n');
  return `usage: hashwire <command> [options]\n\ncommands:\n${script}\n${list}\n`;
}

/** Runs one CLI invocation and returns the exit code; never calls process.exit itself. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return 0;
  }
  const command = commands[name];
  if (!command)
    throw new UsageError(
      `unknown command "${name}"; commands: test, circusd, ${Object.keys(commands).join(', ')}`,
    );
  return command.run(rest);
}
