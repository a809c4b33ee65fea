import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { readRound } from '@hashwire/reporter';
import { z } from 'zod';
import { requireAccount } from './auth.js';
import { ApiError } from './errors.js';
import {
  balanceResponse,
  earningItem,
  paymentItem,
  readBalance,
  readEarnings,
  readPayments,
} from './read-payouts.js';
import {
  type ApiChain,
  readAccount,
  readAccountWorkers,
  readBlock,
  readBlockPage,
  readHistory,
  readPool,
  readServices,
} from './read.js';
import { type ApiRoute, noQuery, route } from './route.js';
import {
  accountName,
  block,
  blockHash,
  chainName,
  hashrate,
  page,
  pageQuery,
  workerCounters,
} from './schemas.js';

export interface ReadContext {
  redis: RedisClient;
  keys: KeyBuilder;
  chains: ReadonlyMap<string, ApiChain>;
}

const pool = z.object({
  chain: z.string(),
  algorithm: z.enum(['sha256d', 'scrypt']),
  hashrate,
  minersOnline: z.number().describe('accounts with a share accepted in the last 10 minutes'),
  workersOnline: z.number().describe('workers with a share accepted in the last 10 minutes'),
  network: z
    .object({
      height: z.number().describe('height of the block being mined'),
      difficulty: z.number().describe('network difficulty of that block'),
      jobAt: z.number().describe('when its latest job was made, epoch ms'),
    })
    .nullable()
    .describe('from the latest job; null before any'),
  round: z.object({
    accounts: z.number(),
    totalDiff: z.number().describe('difficulty credited in the current round'),
  }),
  shares: z
    .object({
      accepted: z.number(),
      stale: z.number().describe('for a job no longer current'),
      duplicate: z.number().describe('submitted before (by any server)'),
      lowdiff: z.number().describe('below the share difficulty'),
      invalid: z.number().describe('malformed, unknown job, bad time or version'),
    })
    .describe('shares of the whole chain by result, since the pool began counting them; each credited once'),
});

const historyPoint = z.object({
  t: z.number().describe('start of the interval, epoch ms'),
  hashrate: z
    .number()
    .describe('hashes per second over the interval (its elapsed part, for the current one)'),
});

const history = z.object({
  chain: z.string(),
  account: z.string().optional(),
  at: z.number().describe('when it was read, epoch ms'),
  fiveMinutes: z
    .array(historyPoint)
    .describe('every 5 minutes from the start of the previous hour to now, oldest first'),
  hours: z.array(historyPoint).describe('every hour of the last 24 and the current one, oldest first'),
});

const historyQuery = z
  .object({
    since: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .describe('epoch ms: only the points whose interval starts at or after it'),
  })
  .strict();

const service = z.object({
  kind: z.string(),
  id: z.string(),
  chain: z.string(),
  state: z.enum(['up', 'draining']),
  version: z.string(),
  startedAt: z.number(),
  load: z.number(),
  loadFigures: z.record(z.string(), z.number()),
  endpoints: z.record(z.string(), z.string()).describe('rpc, http, stratum, agent, api: those it published'),
});

const chainParams = z.object({ chain: chainName }).strict();
const accountParams = z.object({ chain: chainName, account: accountName }).strict();

export function readRoutes(ctx: ReadContext): ApiRoute[] {
  const { redis, keys } = ctx;
  const chainOf = (name: string): ApiChain => {
    const c = ctx.chains.get(name);
    if (!c) {
      const known = [...ctx.chains.keys()].join(', ') || 'none';
      throw new ApiError(
        404,
        'not_found',
        `path chain: no chain ${name} (this pool has: ${known})`,
        'chain',
        'path',
      );
    }
    return c;
  };
  return [
    route({
      method: 'GET',
      url: '/v1/pool',
      summary: 'Every chain of the pool: hashrate, miners and workers online, network, current round',
      tag: 'pool',
      params: z.object({}),
      query: noQuery,
      response: z.object({ chains: z.array(pool) }),
      handler: async () => ({
        chains: await Promise.all([...ctx.chains.values()].map((c) => readPool(redis, keys, c))),
      }),
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain',
      summary: 'One chain of the pool',
      tag: 'pool',
      params: chainParams,
      query: noQuery,
      response: pool,
      errors: { 404: 'no such chain' },
      handler: async ({ params }) => readPool(redis, keys, chainOf(params.chain)),
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/hashrate/history',
      summary:
        'The chain’s stored hashrate history: 5-minute points over the last hour or two, hourly over 24 h',
      tag: 'pool',
      params: chainParams,
      query: historyQuery,
      response: history,
      errors: { 404: 'no such chain' },
      handler: async ({ params, query }) =>
        readHistory(redis, keys, chainOf(params.chain), { since: query.since }),
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/accounts/:account/hashrate/history',
      summary:
        'An account’s stored hashrate history: 5-minute points over the last hour or two, hourly over 24 h',
      tag: 'accounts',
      params: accountParams,
      query: historyQuery,
      response: history,
      errors: { 403: 'an account token asking for another account', 404: 'no such chain' },
      handler: async ({ params, query, principal }) => {
        requireAccount(principal, params.account);
        return readHistory(redis, keys, chainOf(params.chain), {
          account: params.account,
          since: query.since,
        });
      },
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/accounts/:account',
      summary: 'An account: hashrate, workers, credited difficulty this round, recent blocks found',
      tag: 'accounts',
      params: accountParams,
      query: noQuery,
      response: z.object({
        chain: z.string(),
        account: z.string(),
        hashrate,
        roundDiff: z.number().describe('difficulty credited to it in the current round'),
        workers: z.number().describe('workers it ever had counted (list: …/workers)'),
        recentBlocks: z.array(block).describe('blocks it found among the chain’s last 100'),
      }),
      errors: { 403: 'an account token asking for another account', 404: 'no such chain' },
      handler: async ({ params, principal }) => {
        requireAccount(principal, params.account);
        return readAccount(redis, keys, chainOf(params.chain), params.account);
      },
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/accounts/:account/workers',
      summary: 'An account’s workers by name, with last share, hashrate and share counts',
      tag: 'accounts',
      params: accountParams,
      query: pageQuery,
      response: page(workerCounters).extend({ total: z.number() }),
      errors: { 403: 'an account token asking for another account', 404: 'no such chain' },
      handler: async ({ params, query, principal }) => {
        requireAccount(principal, params.account);
        return readAccountWorkers(redis, keys, chainOf(params.chain), params.account, query);
      },
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/accounts/:account/balance',
      summary: 'An account’s balance (credited, not yet paid), what it was paid, and what is being paid now',
      tag: 'accounts',
      params: accountParams,
      query: noQuery,
      response: balanceResponse,
      errors: { 403: 'an account token asking for another account', 404: 'no such chain' },
      handler: async ({ params, principal }) => {
        requireAccount(principal, params.account);
        const c = chainOf(params.chain);
        return readBalance(redis, keys, c.chain, params.account, c.payments ?? null);
      },
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/accounts/:account/payments',
      summary: 'An account’s payments with their txids, newest first',
      tag: 'accounts',
      params: accountParams,
      query: pageQuery,
      response: page(paymentItem),
      errors: { 403: 'an account token asking for another account', 404: 'no such chain' },
      handler: async ({ params, query, principal }) => {
        requireAccount(principal, params.account);
        return readPayments(redis, keys, chainOf(params.chain).chain, params.account, query);
      },
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/accounts/:account/earnings',
      summary: 'What each matured block credited to an account, newest first',
      tag: 'accounts',
      params: accountParams,
      query: pageQuery,
      response: page(earningItem),
      errors: { 403: 'an account token asking for another account', 404: 'no such chain' },
      handler: async ({ params, query, principal }) => {
        requireAccount(principal, params.account);
        return readEarnings(redis, keys, chainOf(params.chain).chain, params.account, query);
      },
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/blocks',
      summary: 'Blocks found, newest first',
      tag: 'blocks',
      params: chainParams,
      query: pageQuery,
      response: page(block),
      errors: { 404: 'no such chain' },
      handler: async ({ params, query }) => readBlockPage(redis, keys, chainOf(params.chain).chain, query),
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/blocks/:hash',
      summary: 'One block: lifecycle state, confirmations, finder',
      tag: 'blocks',
      params: z.object({ chain: chainName, hash: blockHash }).strict(),
      query: noQuery,
      response: block,
      errors: { 404: 'no such chain or block' },
      handler: async ({ params }) => {
        const found = await readBlock(redis, keys, chainOf(params.chain).chain, params.hash);
        if (!found)
          throw new ApiError(404, 'not_found', `path hash: no block ${params.hash}`, 'hash', 'path');
        return found;
      },
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/rounds/current',
      summary: 'The current round: credited difficulty per account',
      tag: 'rounds',
      params: chainParams,
      query: noQuery,
      response: z.object({
        chain: z.string(),
        totalDiff: z.number(),
        accounts: z.record(z.string(), z.number()).describe('account → credited difficulty'),
      }),
      errors: { 404: 'no such chain' },
      handler: async ({ params }) => {
        const { chain } = chainOf(params.chain);
        const accounts = await readRound(redis, keys, chain);
        return { chain, totalDiff: Object.values(accounts).reduce((a, b) => a + b, 0), accounts };
      },
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/rounds',
      summary: 'Closed rounds (the blocks that closed them), newest first',
      tag: 'rounds',
      params: chainParams,
      query: pageQuery,
      response: page(block),
      errors: { 404: 'no such chain' },
      handler: async ({ params, query }) =>
        readBlockPage(redis, keys, chainOf(params.chain).chain, query, (b) => b.round !== null),
    }),
    route({
      method: 'GET',
      url: '/v1/services',
      summary: 'The live services in discovery',
      tag: 'services',
      params: z.object({}),
      query: noQuery,
      response: z.object({ services: z.array(service) }),
      handler: async ({ principal }) => ({
        services: await readServices(redis, keys, {
          internal: principal.kind === 'admin' || principal.kind === 'read',
        }),
      }),
    }),
  ];
}
