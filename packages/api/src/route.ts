import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { invalidInput } from './errors.js';

type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'DELETE';

/** What a handler gets: the validated path parameters and query, and the raw request and reply. */
export interface RouteInput<P, Q> {
  params: P;
  query: Q;
  request: FastifyRequest;
  reply: FastifyReply;
}

/**
 * One API route: the schemas that validate its input are the ones `/v1/openapi.json` is
 * generated from, so the document cannot drift from what the server checks.
 */
export interface ApiRoute<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType> {
  method: HttpMethod;
  /** Fastify path syntax (`/v1/chains/:chain`). */
  url: string;
  summary: string;
  tag: string;
  params: P;
  query: Q;
  /** An opaque request body (membership metadata, configs): documented, taken as text. */
  body?: { description: string };
  /** The 200 answer's schema; absent for HEAD. */
  response?: z.ZodType;
  /** Extra answers worth documenting (404 not a member…). */
  errors?: Record<number, string>;
  /** Response headers every answer carries (`x-group-version`). */
  headers?: Record<string, string>;
  handler: (input: RouteInput<z.infer<P>, z.infer<Q>>) => Promise<unknown>;
}

/** Builds a route with its types inferred from its schemas. */
export function route<P extends z.ZodType, Q extends z.ZodType>(spec: ApiRoute<P, Q>): ApiRoute<P, Q> {
  return spec;
}

/** No query parameters at all: an unknown one is an error naming it. */
export const noQuery = z.object({}).strict();

export function registerRoutes(app: FastifyInstance, routes: readonly ApiRoute[]): void {
  // Paths with a HEAD of their own (a membership heartbeat) keep it; every other GET answers HEAD too.
  const ownHead = new Set(routes.filter((r) => r.method === 'HEAD').map((r) => r.url));
  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.url,
      exposeHeadRoute: r.method === 'GET' && !ownHead.has(r.url),
      handler: async (request, reply) => {
        const params = r.params.safeParse(request.params ?? {});
        if (!params.success) throw invalidInput(params.error, 'path');
        const query = r.query.safeParse(request.query ?? {});
        if (!query.success) throw invalidInput(query.error, 'query');
        const result = await r.handler({ params: params.data, query: query.data, request, reply });
        if (r.method === 'HEAD') return reply.send();
        return result;
      },
    });
  }
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        field: { type: 'string', description: 'the input that was wrong' },
        in: { type: 'string', enum: ['path', 'query', 'body', 'header'] },
      },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
};

function parametersOf(schema: z.ZodType, place: 'path' | 'query'): unknown[] {
  const json = jsonSchema(schema, 'input') as {
    properties?: Record<string, Record<string, unknown>>;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({
    name,
    in: place,
    required: place === 'path' || (json.required ?? []).includes(name),
    ...(typeof s.description === 'string' && { description: s.description }),
    schema: s,
  }));
}

/** The OpenAPI 3.1 document of `routes`, from the very schemas that validate them. */
export function openApiDocument(routes: readonly ApiRoute[], info: { version: string }): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const headers = Object.fromEntries(
      Object.entries(r.headers ?? {}).map(([name, description]) => [
        name,
        { description, schema: { type: 'integer' } },
      ]),
    );
    const responses: Record<string, unknown> = {
      200: {
        description: 'OK',
        ...(Object.keys(headers).length > 0 && { headers }),
        ...(r.response && { content: { 'application/json': { schema: jsonSchema(r.response, 'output') } } }),
      },
      400: {
        description: 'a bad input; `error.field` names it',
        content: { 'application/json': { schema: ERROR_SCHEMA } },
      },
    };
    for (const [status, description] of Object.entries(r.errors ?? {})) {
      responses[status] = { description, content: { 'application/json': { schema: ERROR_SCHEMA } } };
    }
    paths[path] ??= {};
    paths[path][r.method.toLowerCase()] = {
      summary: r.summary,
      tags: [r.tag],
      parameters: [...parametersOf(r.params, 'path'), ...parametersOf(r.query, 'query')],
      ...(r.body && {
        requestBody: {
          description: r.body.description,
          required: false,
          content: { '*/*': { schema: {} } },
        },
      }),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'hashwire api', version: info.version },
    paths,
  };
}
