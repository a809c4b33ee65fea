import type { Metrics } from '@hashwire/core';
import type { FastifyInstance } from 'fastify';

/** The `route` label of a request no route matched (404s of unknown paths): one series for all of them. */
export const UNMATCHED_ROUTE = '(unmatched)';

/**
 * Counts every answered request and its latency in the service's metrics, by method, route
 * pattern and status class: what `/metrics` of the api's status server shows.
 */
export function observeRequests(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    metrics.apiRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });
}
