import { socketCommand } from '@hashwire/core';

/** The runtime API could not be reached, did not answer in time, or refused a command. */
export class HaproxyRuntimeError extends Error {
  override readonly name = 'HaproxyRuntimeError';
  constructor(
    message: string,
    /** The command, when HAProxy answered it with an error. */
    readonly command?: string,
    /** HAProxy's answer, trimmed. */
    readonly reply?: string,
  ) {
    super(message);
  }
}

/**
 * One command on HAProxy's runtime API (stats socket): connect, send the line, read until
 * HAProxy closes the connection (it does after answering when not in prompt mode).
 */
export async function runtimeCommand(socketPath: string, line: string, timeoutMs = 5000): Promise<string> {
  try {
    return await socketCommand(socketPath, line, timeoutMs);
  } catch (error) {
    throw new HaproxyRuntimeError(`haproxy runtime API at ${(error as Error).message}`);
  }
}

/** One line of `show servers state`. */
export interface ServerState {
  backend: string;
  name: string;
  address: string;
  port: number;
  /** Health: `running` is UP (passes its checks), `stopped` is DOWN. */
  operational: 'stopped' | 'starting' | 'running' | 'stopping';
  /** Raw `srv_admin_state` flags. */
  adminFlags: number;
  /** In maintenance (forced by the runtime API, inherited or from the config): takes no traffic. */
  maint: boolean;
  /** Draining: keeps its connections, gets no new ones. */
  drain: boolean;
  /** 0 when the server has no agent check port. */
  agentPort: number;
  /** Empty when the agent talks on the server's address. */
  agentAddress: string;
  /** Port of the health check (the server's own port when it has no `port` of its own). */
  checkPort: number;
}

/** One server row of `show stat`. */
export interface ServerStat {
  backend: string;
  name: string;
  /** HAProxy's status word: `UP`, `DOWN`, `DRAIN`, `MAINT`, `UP 1/2`, `no check`, ... */
  status: string;
  /** Current sessions (client connections through this server). */
  sessions: number;
  /** Sessions since start. */
  totalSessions: number;
  weight: number;
  /** Last agent check result text (e.g. what the agent answered), or ''. */
  agentDescription: string;
}

/** One CSV line of `show stat`: HAProxy quotes a field that holds a comma or a quote. */
function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        current += '"';
        i++;
      } else if (c === '"') quoted = false;
      else current += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(current);
      current = '';
    } else current += c;
  }
  fields.push(current);
  return fields;
}

const OPERATIONAL = ['stopped', 'starting', 'running', 'stopping'] as const;
// srv_admin_state flags (HAProxy's server.h): forced/inherited/config/resolution/hostname maint, forced/inherited drain.
const MAINT_FLAGS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
const DRAIN_FLAGS = 0x08 | 0x10;

/** Options of a HaproxyRuntime. */
export interface HaproxyRuntimeOptions {
  /** Path of an admin-level stats socket. */
  socketPath: string;
  /** Per command. @defaultValue 5000 */
  timeoutMs?: number;
}

/** A small client of HAProxy's runtime API: one command per connection, typed answers for the few reads it needs. */
export class HaproxyRuntime {
  readonly socketPath: string;
  private readonly timeoutMs: number;

  constructor(options: HaproxyRuntimeOptions) {
    this.socketPath = options.socketPath;
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  /** The raw answer to `line`. */
  command(line: string): Promise<string> {
    return runtimeCommand(this.socketPath, line, this.timeoutMs);
  }

  /**
   * Runs a state-changing command. HAProxy answers those with nothing on success and a sentence
   * on failure, except a few that confirm in words: pass `ok` for those.
   */
  async execute(line: string, ok?: RegExp): Promise<string> {
    const reply = (await this.command(line)).trim();
    if (reply === '' || ok?.test(reply)) return reply;
    throw new HaproxyRuntimeError(`haproxy refused "${line}": ${reply}`, line, reply);
  }

  /** `show servers state <backend>`: every server of the backend with its address, health and admin state. */
  async serversState(backend: string): Promise<ServerState[]> {
    const line = `show servers state ${backend}`;
    const reply = await this.command(line);
    const lines = reply.split('\n');
    const headerAt = lines.findIndex((l) => l.startsWith('# be_id'));
    const header = lines[headerAt];
    if (!header)
      throw new HaproxyRuntimeError(`haproxy refused "${line}": ${reply.trim()}`, line, reply.trim());
    const columns = header.slice(2).split(' ');
    const at = (name: string) => columns.indexOf(name);
    const [iName, iBackend, iAddr, iPort, iOp, iAdmin, iAgentAddr, iAgentPort, iCheckPort] = [
      'srv_name',
      'be_name',
      'srv_addr',
      'srv_port',
      'srv_op_state',
      'srv_admin_state',
      'srv_agent_addr',
      'srv_agent_port',
      'srv_check_port',
    ].map(at) as number[];
    // The first line is the format version; servers follow the header.
    return lines
      .slice(headerAt + 1)
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const f = l.split(' ');
        const field = (i: number | undefined) => (i === undefined || i < 0 ? '' : (f[i] ?? ''));
        const admin = Number(field(iAdmin));
        const agentAddress = field(iAgentAddr);
        return {
          backend: field(iBackend),
          name: field(iName),
          address: field(iAddr),
          port: Number(field(iPort)),
          operational: OPERATIONAL[Number(field(iOp))] ?? 'stopped',
          adminFlags: admin,
          maint: (admin & MAINT_FLAGS) !== 0,
          drain: (admin & DRAIN_FLAGS) !== 0,
          agentPort: Number(field(iAgentPort)) || 0,
          agentAddress: agentAddress === '-' ? '' : agentAddress,
          checkPort: Number(field(iCheckPort)) || 0,
        };
      });
  }

  /** Server rows of `show stat`, of one backend when given. */
  async serverStats(backend?: string): Promise<ServerStat[]> {
    const reply = await this.command('show stat -1 4 -1');
    const lines = reply.split('\n');
    const header = lines[0]?.startsWith('# ') ? lines[0].slice(2).split(',') : null;
    if (!header)
      throw new HaproxyRuntimeError(`haproxy refused "show stat": ${reply.trim()}`, 'show stat', reply);
    const at = (name: string) => header.indexOf(name);
    const rows: ServerStat[] = [];
    for (const line of lines.slice(1)) {
      if (line.trim() === '') continue;
      const f = splitCsvLine(line);
      const field = (name: string) => f[at(name)] ?? '';
      if (backend !== undefined && field('pxname') !== backend) continue;
      rows.push({
        backend: field('pxname'),
        name: field('svname'),
        status: field('status'),
        sessions: Number(field('scur')) || 0,
        totalSessions: Number(field('stot')) || 0,
        weight: Number(field('weight')) || 0,
        agentDescription: field('agent_desc'),
      });
    }
    return rows;
  }
}
