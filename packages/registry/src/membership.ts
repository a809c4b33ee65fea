import { EventEmitter } from 'node:events';
import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from './redis.js';
import { runScript } from './scripts.js';

/** One view of a group: its version, group config, and active/inactive members with their configs. */
export interface GroupView {
  version: number;
  config: string | null;
  active: { id: string; config: string | null }[];
  /** Members with a persistent config that are not currently joined. */
  inactive: { id: string; config: string }[];
}

/** A heartbeat from a member the group no longer has (expired or left): join again. */
export class NotMemberError extends Error {
  override readonly name = 'NotMemberError';
}

export const DEFAULT_MEMBER_TIMEOUT_MS = 10_000;

function pairs(flat: (string | null)[]): { id: string; config: string | null }[] {
  const out: { id: string; config: string | null }[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ id: flat[i] as string, config: flat[i + 1] ?? null });
  return out;
}

/**
 * Membership groups (a group membership tracker, as the api service will serve it): members join with their own timeout and
 * heartbeat; a member silent past its timeout is dropped; every change of membership or
 * configuration increases the group version, so a member learns of changes from the version
 * its heartbeat returns. Member configs persist and may be set before the member joins.
 */
export class Membership {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
  ) {}

  private groupKeys(group: string): string[] {
    const k = this.keys;
    return ['members', 'timeouts', 'mconfig', 'config', 'version'].map((sub) => k.group(group, sub));
  }

  private async op(group: string, args: (string | number)[]): Promise<unknown> {
    try {
      return await runScript(this.redis, 'group', this.groupKeys(group), args);
    } catch (error) {
      const message = (error as Error).message;
      if (message.startsWith('NOTMEMBER')) throw new NotMemberError(`${message.slice(10)} (group ${group})`);
      throw error;
    }
  }

  private view(reply: unknown): GroupView {
    const [version, config, active, inactive] = reply as [number, string | null, (string | null)[], string[]];
    return {
      version,
      config: config ?? null,
      active: pairs(active),
      inactive: pairs(inactive) as { id: string; config: string }[],
    };
  }

  async join(
    group: string,
    member: string,
    options: { timeoutMs?: number; config?: string } = {},
  ): Promise<GroupView> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_MEMBER_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new RangeError(`timeoutMs must be a positive integer of milliseconds, got ${timeoutMs}`);
    }
    const hasConfig = options.config !== undefined;
    return this.view(
      await this.op(group, ['join', member, timeoutMs, hasConfig ? '1' : '0', options.config ?? '']),
    );
  }

  /** Extends the member's deadline; returns the group version. Throws NotMemberError when it must rejoin. */
  async heartbeat(group: string, member: string): Promise<number> {
    const [version] = (await this.op(group, ['heartbeat', member])) as [number];
    return version;
  }

  async leave(group: string, member: string): Promise<GroupView> {
    return this.view(await this.op(group, ['leave', member]));
  }

  /** Sets (or with null removes) a member's persistent config; allowed before it joins. */
  async setMemberConfig(group: string, member: string, config: string | null): Promise<GroupView> {
    return this.view(await this.op(group, ['member-config', member, config ?? '']));
  }

  async setGroupConfig(group: string, config: string | null): Promise<GroupView> {
    return this.view(await this.op(group, ['group-config', '', config ?? '']));
  }

  async get(group: string): Promise<GroupView> {
    return this.view(await this.op(group, ['get', '']));
  }

  /**
   * Joins and stays joined: heartbeats every timeout/3, rejoins if dropped (e.g. after a
   * Redis restart), and emits `changed` with the new view whenever the version moves.
   */
  async member(
    group: string,
    member: string,
    options: { timeoutMs?: number; config?: string } = {},
  ): Promise<GroupMember> {
    const handle = new GroupMember(this, group, member, options);
    await handle.start();
    return handle;
  }
}

export class GroupMember extends EventEmitter<{ changed: [GroupView]; error: [Error] }> {
  private timer: NodeJS.Timeout | null = null;
  private version = -1;
  private view: GroupView | null = null;

  constructor(
    private readonly membership: Membership,
    readonly group: string,
    readonly id: string,
    private readonly options: { timeoutMs?: number; config?: string },
  ) {
    super();
  }

  get current(): GroupView | null {
    return this.view;
  }

  async start(): Promise<void> {
    this.update(await this.membership.join(this.group, this.id, this.options));
    const every = Math.max(10, Math.floor((this.options.timeoutMs ?? DEFAULT_MEMBER_TIMEOUT_MS) / 3));
    this.timer = setInterval(() => void this.beat(), every);
    this.timer.unref();
  }

  private update(view: GroupView, force = false): void {
    this.view = view;
    if (force || view.version !== this.version) {
      this.version = view.version;
      this.emit('changed', view);
    }
  }

  private async beat(): Promise<void> {
    try {
      const version = await this.membership.heartbeat(this.group, this.id);
      if (version !== this.version) this.update(await this.membership.get(this.group));
    } catch (error) {
      try {
        // Dropped (timed out, or Redis lost its data): rejoining is a change of membership.
        if (error instanceof NotMemberError)
          this.update(await this.membership.join(this.group, this.id, this.options), true);
        else throw error;
      } catch (inner) {
        if (this.listenerCount('error') > 0) this.emit('error', inner as Error);
      }
    }
  }

  async leave(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.membership.leave(this.group, this.id);
  }
}
