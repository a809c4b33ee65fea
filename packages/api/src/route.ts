import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { type Access, type Authenticator, type Principal, requireAccess } from './auth.js';
import { ApiError, invalidInput } from './errors.js';

type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

/** What a handler gets: the validated path parameters, query and JSON body, who asks, and the raw request and reply. */
export interface RouteInput<P, Q, B = unknown> {
  params: P;
  query: Q;
  /** The body validated by the route's `json` schema (undefined without one). */
  body: B;
  /** Who made the request (`public` without a token). */
  principal: Principal;
  request: FastifyRequest;
  reply: FastifyReply;
}

/**
 * One API route: the schemas that validate its input are the ones `/v1/openapi.json` is
 * generated from, so the document cannot drift from what the server checks.
 */
export interface ApiRoute<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
> {
  method: HttpMethod;
  /** Fastify path syntax (`/v1/chains/:chain`). */
  url: string;
  summary: string;
  tag: string;
  params: P;
  query: Q;
  /** An opaque request body (membership metadata, configs): documented, taken as text. */
  body?: { description: string };
  /** A JSON request body, validated by this schema (a bad one is a 400 naming the field). */
  json?: B;
  /**
   * Who may call it: `public` (anyone, no token needed), `read` (a read or admin token),
   * `admin` (an admin token). @defaultValue 'public'
   */
  access?: Access;
  /** Added to a 401/403 answer: why this route needs a token (the setting that opens it). */
  accessHint?: string;
  /** When true for a request, the route needs no token for it (membership writes straight from loopback). */
  publicWhen?: (request: FastifyRequest) => boolean;
  /** The 200 answer's schema; absent for HEAD. */
  response?: z.ZodType;
  /** Extra answers worth documenting (404 not a member…). */
  errors?: Record<number, string>;
  /** Response headers every answer carries (`x-group-version`). */
  headers?: Record<string, string>;
  handler: (input: RouteInput<z.infer<P>, z.infer<Q>, z.infer<B>>) => Promise<unknown>;
}

/** Builds a route with its types inferred from its schemas. */
export function route<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType = z.ZodUnknown>(
  spec: ApiRoute<P, Q, B>,
): ApiRoute<P, Q, B> {
  return spec;
}

/** The request's text body as JSON, validated: malformed JSON and a bad field are 400s naming it. */
function parseJsonBody(schema: z.ZodType, raw: unknown): unknown {
  let value: unknown = raw;
  if (typeof raw === 'string') {
    if (raw.trim() === '') value = undefined;
    else {
      try {
        value = JSON.parse(raw);
      } catch (error) {
        throw new ApiError(
          400,
          'bad_request',
          `body: malformed JSON (${(error as Error).message})`,
          'body',
          'body',
        );
      }
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidInput(parsed.error, 'body');
  return parsed.data;
}

/** No query parameters at all: an unknown one is an error naming it. */
export const noQuery = z.object({}).strict();

const principals = new WeakMap<FastifyRequest, Promise<Principal>>();

/**
 * Who made a request, authenticated once per request: the rate limiter (which keys by token)
 * and the route both ask.
 */
export function requestPrincipal(request: FastifyRequest, auth: Authenticator): Promise<Principal> {
  let principal = principals.get(request);
  if (!principal) {
    principal = auth.authenticate(request);
    principals.set(request, principal);
  }
  return principal;
}

export function registerRoutes(app: FastifyInstance, routes: readonly ApiRoute[], auth: Authenticator): void {
  // Paths with a HEAD of their own (a membership heartbeat) keep it; every other GET answers HEAD too.
  const ownHead = new Set(routes.filter((r) => r.method === 'HEAD').map((r) => r.url));
  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.url,
      exposeHeadRoute: r.method === 'GET' && !ownHead.has(r.url),
      handler: async (request, reply) => {
        const principal = await requestPrincipal(request, auth);
        try {
          requireAccess(principal, r.publicWhen?.(request) ? 'public' : (r.access ?? 'public'));
        } catch (error) {
          if (error instanceof ApiError && r.accessHint)
            throw new ApiError(
              error.status,
              error.code,
              `${error.message}: ${r.accessHint}`,
              error.field,
              error.place,
            );
          throw error;
        }
        const params = r.params.safeParse(request.params ?? {});
        if (!params.success) throw invalidInput(params.error, 'path');
        const query = r.query.safeParse(request.query ?? {});
        if (!query.success) throw invalidInput(query.error, 'query');
        const body = r.json ? parseJsonBody(r.json, request.body) : undefined;
        const result = await r.handler({
          params: params.data,
          query: query.data,
          body,
          principal,
          request,
          reply,
        });
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
      ...((r.access ?? 'public') !== 'public' && {
        security: [{ bearer: [] }],
        description: `needs a${r.access === 'admin' ? 'n admin' : ' read or admin'} token (Authorization: Bearer …)${r.accessHint ? `: ${r.accessHint}` : ''}`,
      }),
      ...(r.json && {
        requestBody: {
          required: true,
          content: { 'application/json': { schema: jsonSchema(r.json, 'input') } },
        },
      }),
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
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
