import type { PoolEvent } from '@hashwire/protocol';
import * as amqp from 'amqplib';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import type { WatchEndpoint } from './watch-endpoint.js';

/**
 * Delivery to the external endpoint kinds (http(s), redis, amqp, mysql; `ws` is written by a
 * script in Redis, see the worker). A deliver call resolves only once the endpoint has the event
 * (2xx answer, PUBLISH answered, publisher confirm, row committed) and throws otherwise.
 * Connections are kept per endpoint and dropped on any error, so a recovered endpoint gets a
 * fresh one on the next attempt.
 */

/** What one delivery sends. */
export interface WatchMessage {
  /** The idempotency key: `<watch id>:<stream>:<seq>`, the same on every attempt. */
  key: string;
  watch: string;
  event: PoolEvent;
  /** 1 on the first attempt. */
  attempt: number;
}

/** The JSON body every kind carries. */
export function messageBody(message: WatchMessage): string {
  const { event } = message;
  return JSON.stringify({
    key: message.key,
    watch: message.watch,
    event: event.type,
    stream: event.stream,
    seq: event.seq,
    ts: event.ts,
    data: event.data,
  });
}

export interface Deliverers {
  deliver(endpoint: WatchEndpoint, message: WatchMessage): Promise<void>;
  /** Closes the connections of an endpoint no watch of this process uses any more. */
  drop(endpoint: WatchEndpoint): Promise<void>;
  close(): Promise<void>;
}

/**
 * The table a mysql endpoint writes, created when missing (so the api's user needs CREATE on the
 * database, or the operator creates it with this shape). `idempotency_key` is the primary key:
 * a retried event inserts once. `n` keeps the order rows arrived in.
 */
export function mysqlTableDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${mysql.escapeId(table)} (
  idempotency_key VARCHAR(191) NOT NULL PRIMARY KEY,
  n BIGINT NOT NULL AUTO_INCREMENT UNIQUE,
  watch_id CHAR(32) NOT NULL,
  event VARCHAR(191) NOT NULL,
  stream VARCHAR(64) NOT NULL,
  seq VARCHAR(48) NOT NULL,
  ts BIGINT NOT NULL,
  data LONGTEXT NOT NULL,
  delivered_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
)`;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface AmqpLink {
  model: amqp.ChannelModel;
  channel: amqp.ConfirmChannel;
  closed: Promise<Error>;
}

export function createDeliverers(options: { timeoutMs: number }): Deliverers {
  const { timeoutMs } = options;
  const redisClients = new Map<string, Promise<Redis>>();
  const amqpLinks = new Map<string, Promise<AmqpLink>>();
  const mysqlPools = new Map<string, mysql.Pool>();
  const createdTables = new Set<string>();

  const connectionKey = (e: WatchEndpoint): string => {
    if (e.kind === 'amqp') return e.connectUrl;
    if (e.kind === 'mysql') return `${e.user}:${e.password ?? ''}@${e.host}:${e.port}/${e.database}`;
    if (e.kind === 'redis') return `${e.username ?? ''}:${e.password ?? ''}@${e.host}:${e.port}/${e.db}`;
    return e.canonical;
  };

  async function http(endpoint: Extract<WatchEndpoint, { kind: 'http' }>, message: WatchMessage) {
    // fetch refuses URLs with credentials: they travel as Basic auth instead.
    const url = new URL(endpoint.url);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'idempotency-key': message.key,
      'x-hashwire-event': message.event.type,
      'x-hashwire-watch': message.watch,
      'x-hashwire-attempt': String(message.attempt),
    };
    if (url.username !== '' || url.password !== '') {
      const user = decodeURIComponent(url.username);
      const password = decodeURIComponent(url.password);
      headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      url.username = '';
      url.password = '';
    }
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers,
        body: messageBody(message),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'manual',
      });
    } catch (error) {
      // fetch says only "fetch failed": the reason is in its cause.
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new Error(`webhook unreachable: ${why}`);
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.status < 200 || res.status > 299) throw new Error(`webhook answered HTTP ${res.status}`);
  }

  /** One connection per Redis endpoint, shared by its watches; made once even when many ask at once. */
  function redisClient(endpoint: Extract<WatchEndpoint, { kind: 'redis' }>): Promise<Redis> {
    const id = connectionKey(endpoint);
    let pending = redisClients.get(id);
    if (!pending) {
      const client = new Redis({
        host: endpoint.host,
        port: endpoint.port,
        db: endpoint.db,
        ...(endpoint.username ? { username: endpoint.username } : {}),
        ...(endpoint.password ? { password: endpoint.password } : {}),
        lazyConnect: true,
        connectTimeout: timeoutMs,
        commandTimeout: timeoutMs,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        // No reconnecting of its own: the watch's retries decide when to try again.
        retryStrategy: () => null,
      });
      client.on('error', () => {});
      // Once closed it stays closed: the next delivery makes a new one.
      client.once('end', () => {
        if (redisClients.get(id) === pending) redisClients.delete(id);
      });
      pending = client.connect().then(
        () => client,
        (error) => {
          if (redisClients.get(id) === pending) redisClients.delete(id);
          client.disconnect();
          throw error;
        },
      );
      redisClients.set(id, pending);
    }
    return pending;
  }

  async function redisPublish(endpoint: Extract<WatchEndpoint, { kind: 'redis' }>, message: WatchMessage) {
    const client = await redisClient(endpoint);
    // No subscriber is not a failure: PUBLISH is fire-and-forget by design.
    await client.publish(endpoint.channel, messageBody(message));
  }

  function amqpLink(endpoint: Extract<WatchEndpoint, { kind: 'amqp' }>): Promise<AmqpLink> {
    const id = connectionKey(endpoint);
    let link = amqpLinks.get(id);
    if (!link) {
      link = (async () => {
        const model = await amqp.connect(endpoint.connectUrl, { timeout: timeoutMs });
        model.on('error', () => {});
        let channel: amqp.ConfirmChannel;
        try {
          channel = await model.createConfirmChannel();
        } catch (error) {
          await model.close().catch(() => {});
          throw error;
        }
        channel.on('error', () => {});
        const closed = new Promise<Error>((resolve) => {
          const gone = (error?: Error) => {
            amqpLinks.delete(id);
            resolve(error ?? new Error('amqp channel closed'));
          };
          channel.once('close', () => {
            gone();
            void model.close().catch(() => {});
          });
          channel.once('error', (error: Error) => gone(error));
          model.once('close', (error?: Error) => gone(error));
        });
        return { model, channel, closed };
      })();
      link.catch(() => amqpLinks.delete(id));
      amqpLinks.set(id, link);
    }
    return link;
  }

  async function amqpPublish(endpoint: Extract<WatchEndpoint, { kind: 'amqp' }>, message: WatchMessage) {
    const link = await withTimeout(amqpLink(endpoint), timeoutMs, 'amqp connect');
    const confirmed = new Promise<void>((resolve, reject) => {
      link.channel.publish(
        endpoint.exchange,
        message.event.type,
        Buffer.from(messageBody(message)),
        {
          messageId: message.key,
          type: message.event.type,
          contentType: 'application/json',
          persistent: true,
          timestamp: Math.floor(message.event.ts / 1000),
          headers: { 'x-hashwire-watch': message.watch, 'x-hashwire-attempt': message.attempt },
        },
        (error) => (error ? reject(error) : resolve()),
      );
    });
    // A publish to a missing exchange closes the channel instead of nacking.
    await withTimeout(
      Promise.race([confirmed, link.closed.then((error) => Promise.reject(error))]),
      timeoutMs,
      'amqp publisher confirm',
    );
  }

  async function mysqlInsert(endpoint: Extract<WatchEndpoint, { kind: 'mysql' }>, message: WatchMessage) {
    const id = connectionKey(endpoint);
    let pool = mysqlPools.get(id);
    if (!pool) {
      pool = mysql.createPool({
        host: endpoint.host,
        port: endpoint.port,
        user: endpoint.user,
        ...(endpoint.password ? { password: endpoint.password } : {}),
        database: endpoint.database,
        connectionLimit: 2,
        connectTimeout: timeoutMs,
      });
      pool.on('connection', (conn) => conn.on('error', () => {}));
      mysqlPools.set(id, pool);
    }
    const table = `${id}/${endpoint.table}`;
    if (!createdTables.has(table)) {
      await withTimeout(pool.query(mysqlTableDdl(endpoint.table)), timeoutMs, 'mysql create table');
      createdTables.add(table);
    }
    const { event } = message;
    await withTimeout(
      pool.execute(
        `INSERT INTO ${mysql.escapeId(endpoint.table)} (idempotency_key, watch_id, event, stream, seq, ts, data)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE idempotency_key = idempotency_key`,
        [
          message.key,
          message.watch,
          event.type,
          event.stream,
          event.seq,
          event.ts,
          JSON.stringify(event.data),
        ],
      ),
      timeoutMs,
      'mysql insert',
    );
  }

  async function dropConnection(endpoint: WatchEndpoint): Promise<void> {
    const id = connectionKey(endpoint);
    if (endpoint.kind === 'redis') {
      const pending = redisClients.get(id);
      redisClients.delete(id);
      await pending?.then((c) => c.disconnect()).catch(() => {});
    } else if (endpoint.kind === 'amqp') {
      const link = amqpLinks.get(id);
      amqpLinks.delete(id);
      await link?.then((l) => l.model.close()).catch(() => {});
    } else if (endpoint.kind === 'mysql') {
      const pool = mysqlPools.get(id);
      mysqlPools.delete(id);
      for (const t of createdTables) if (t.startsWith(`${id}/`)) createdTables.delete(t);
      await pool?.end().catch(() => {});
    }
  }

  return {
    async deliver(endpoint, message) {
      switch (endpoint.kind) {
        case 'http':
          return http(endpoint, message);
        case 'redis':
          return redisPublish(endpoint, message);
        case 'amqp':
          return amqpPublish(endpoint, message);
        case 'mysql':
          try {
            return await mysqlInsert(endpoint, message);
          } catch (error) {
            // Dropped since it was made: make it again on the next attempt. (The pool replaces
            // dead connections itself, and other watches share it: it stays.)
            if ((error as { errno?: number }).errno === 1146)
              createdTables.delete(`${connectionKey(endpoint)}/${endpoint.table}`);
            throw error;
          }
        case 'ws':
          throw new Error('ws watches are delivered by the worker, into their outbox');
      }
    },
    drop: dropConnection,
    async close() {
      await Promise.allSettled([...redisClients.values()].map((p) => p.then((c) => c.disconnect())));
      redisClients.clear();
      await Promise.allSettled([...amqpLinks.values()].map((l) => l.then((x) => x.model.close())));
      amqpLinks.clear();
      await Promise.allSettled([...mysqlPools.values()].map((p) => p.end()));
      mysqlPools.clear();
    },
  };
}
