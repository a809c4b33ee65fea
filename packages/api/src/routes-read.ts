import { type KeyBuilder, SERVICE_KINDS } from '@hashwire/protocol';
import { type RedisClient, listServices } from '@hashwire/registry';
import { readRound } from '@hashwire/reporter';
import { z } from 'zod';
import { ApiError } from './errors.js';
import {
  type ApiChain,
  readAccount,
  readAccountWorkers,
  readBlock,
  readBlockPage,
  readPool,
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
});

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
      errors: { 404: 'no such chain' },
      handler: async ({ params }) => readAccount(redis, keys, chainOf(params.chain), params.account),
    }),
    route({
      method: 'GET',
      url: '/v1/chains/:chain/accounts/:account/workers',
      summary: 'An account’s workers by name, with last share, hashrate and share counts',
      tag: 'accounts',
      params: accountParams,
      query: pageQuery,
      response: page(workerCounters).extend({ total: z.number() }),
      errors: { 404: 'no such chain' },
      handler: async ({ params, query }) =>
        readAccountWorkers(redis, keys, chainOf(params.chain), params.account, query),
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
      handler: async () => {
        const lists = await Promise.all(SERVICE_KINDS.map((kind) => listServices(redis, keys, kind)));
        return {
          services: lists.flat().map((s) => {
            const endpoints: Record<string, string> = {};
            for (const field of ['rpc', 'http', 'stratum', 'agent', 'api'] as const) {
              const value = s[field];
              if (value) endpoints[field] = value;
            }
            return {
              kind: s.kind,
              id: s.id,
              chain: s.chain,
              state: s.state,
              version: s.version,
              startedAt: s.startedAt,
              load: s.load,
              loadFigures: s.loadFigures ?? {},
              endpoints,
            };
          }),
        };
      },
    }),
  ];
}
