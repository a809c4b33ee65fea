/**
 * Watch endpoints: where a watch delivers, as one URI. Parsing checks everything a delivery
 * would otherwise fail on later (scheme, host, port, names), and gives the canonical form the
 * watch id is derived from (scheme and host lower case, default port written out) and the form
 * shown back (password replaced by `***`).
 */

export type EndpointKind = 'http' | 'redis' | 'amqp' | 'mysql' | 'ws';

interface Common {
  /** The canonical URI (with any password): what the watch id is derived from and what is stored. */
  canonical: string;
  /** The canonical URI with the password replaced by `***`: what the API shows. */
  shown: string;
  /** The password, so delivery errors that quote it can have it removed. */
  password?: string;
}

export type WatchEndpoint = Common &
  (
    | { kind: 'http'; url: string }
    | {
        kind: 'redis';
        host: string;
        port: number;
        db: number;
        username?: string;
        channel: string;
      }
    | { kind: 'amqp'; connectUrl: string; exchange: string }
    | { kind: 'mysql'; host: string; port: number; user: string; database: string; table: string }
    | { kind: 'ws' }
  );

/** A bad endpoint URI; the message says what is wrong (never quoting the password). */
export class EndpointError extends Error {
  override readonly name = 'EndpointError';
}

export const MAX_ENDPOINT_LENGTH = 2048;

/** Names a mysql endpoint may use for its database and table: plain identifiers, nothing to quote. */
const SQL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const EXCHANGE = /^[A-Za-z0-9._:-]{1,255}$/;
const CHANNEL = /^[\x21-\x7e]{1,200}$/;

const DEFAULT_PORT: Record<string, number> = {
  'redis:': 6379,
  'amqp:': 5672,
  'amqps:': 5671,
  'mysql:': 3306,
};

function fail(message: string): never {
  throw new EndpointError(message);
}

function decode(segment: string, what: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return fail(`${what} is not valid percent-encoding`);
  }
}

function authority(url: URL, scheme: string): { host: string; port: number; hostPort: string } {
  if (url.hostname === '') fail(`${scheme}:// needs a host`);
  const host = url.hostname.toLowerCase();
  const port = url.port === '' ? (DEFAULT_PORT[url.protocol] as number) : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail('port must be 1–65535');
  return { host, port, hostPort: `${host}:${port}` };
}

function noExtras(url: URL, scheme: string): void {
  if (url.search !== '') fail(`${scheme}:// takes no query string`);
  if (url.hash !== '') fail(`${scheme}:// takes no #fragment`);
}

function credentials(url: URL): { user: string; password: string } {
  return { user: decode(url.username, 'user'), password: decode(url.password, 'password') };
}

function userInfo(user: string, password: string, shown: boolean): string {
  if (user === '' && password === '') return '';
  const u = encodeURIComponent(user);
  if (password === '') return `${u}@`;
  return `${u}:${shown ? '***' : encodeURIComponent(password)}@`;
}

function segments(url: URL): string[] {
  const path = url.pathname.replace(/^\//, '');
  return path === '' ? [] : path.split('/');
}

/** Parses and checks an endpoint URI; throws EndpointError saying what is wrong. */
export function parseEndpoint(text: string): WatchEndpoint {
  if (text.length > MAX_ENDPOINT_LENGTH) fail(`is longer than ${MAX_ENDPOINT_LENGTH} characters`);
  if (text === 'ws') return { kind: 'ws', canonical: 'ws', shown: 'ws' };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(
      'is not a URI: expected http(s)://…, redis://[:password@]host:port[/db]/channel, amqp://user:pass@host:port/vhost/exchange, mysql://user:pass@host:port/db/table or ws',
    );
  }
  const { user, password } = credentials(url);
  const secret = password === '' ? {} : { password };
  switch (url.protocol) {
    case 'http:':
    case 'https:': {
      if (url.hostname === '') fail('a webhook needs a host');
      if (url.hash !== '') fail('a webhook takes no #fragment');
      const canonical = url.href;
      const shownUrl = new URL(canonical);
      if (shownUrl.password !== '') shownUrl.password = '***';
      return { kind: 'http', url: canonical, canonical, shown: shownUrl.href, ...secret };
    }
    case 'redis:': {
      noExtras(url, 'redis');
      const { host, port, hostPort } = authority(url, 'redis');
      const parts = segments(url);
      if (parts.length < 1 || parts.length > 2)
        fail('redis:// needs a path /channel or /db/channel (e.g. redis://:secret@host:6379/0/pool-events)');
      let db = 0;
      if (parts.length === 2) {
        if (!/^\d{1,3}$/.test(parts[0] as string) || Number(parts[0]) > 255)
          fail(`redis db must be a number 0–255, got ${JSON.stringify(parts[0])}`);
        db = Number(parts[0]);
      }
      const channel = decode(parts[parts.length - 1] as string, 'redis channel');
      if (!CHANNEL.test(channel)) fail('redis channel must be 1–200 printable characters without spaces');
      const tail = `/${db}/${encodeURIComponent(channel)}`;
      return {
        kind: 'redis',
        host,
        port,
        db,
        ...(user !== '' ? { username: user } : {}),
        channel,
        canonical: `redis://${userInfo(user, password, false)}${hostPort}${tail}`,
        shown: `redis://${userInfo(user, password, true)}${hostPort}${tail}`,
        ...secret,
      };
    }
    case 'amqp:':
    case 'amqps:': {
      const scheme = url.protocol.slice(0, -1);
      noExtras(url, scheme);
      const { hostPort } = authority(url, scheme);
      const parts = segments(url);
      if (parts.length !== 2)
        fail(`${scheme}:// needs a path /vhost/exchange (the default vhost "/" is written %2F)`);
      const vhost = decode(parts[0] as string, 'amqp vhost');
      const exchange = decode(parts[1] as string, 'amqp exchange');
      if (vhost === '') fail('amqp vhost must not be empty (the default vhost "/" is written %2F)');
      if (!EXCHANGE.test(exchange)) fail('amqp exchange must be 1–255 characters of A-Z a-z 0-9 . _ : -');
      const vhostPart = `/${encodeURIComponent(vhost)}`;
      const connectUrl = `${scheme}://${userInfo(user, password, false)}${hostPort}${vhostPart}`;
      return {
        kind: 'amqp',
        connectUrl,
        exchange,
        canonical: `${connectUrl}/${exchange}`,
        shown: `${scheme}://${userInfo(user, password, true)}${hostPort}${vhostPart}/${exchange}`,
        ...secret,
      };
    }
    case 'mysql:': {
      noExtras(url, 'mysql');
      const { host, port, hostPort } = authority(url, 'mysql');
      if (user === '') fail('mysql:// needs a user (mysql://user:pass@host:port/db/table)');
      const parts = segments(url);
      if (parts.length !== 2) fail('mysql:// needs a path /db/table');
      const database = decode(parts[0] as string, 'mysql database');
      const table = decode(parts[1] as string, 'mysql table');
      for (const [what, name] of [
        ['database', database],
        ['table', table],
      ] as const) {
        if (!SQL_NAME.test(name))
          fail(
            `mysql ${what} name must be a plain identifier (a letter or _, then up to 63 of A-Z a-z 0-9 _), got ${JSON.stringify(name.slice(0, 80))}`,
          );
      }
      const tail = `/${database}/${table}`;
      return {
        kind: 'mysql',
        host,
        port,
        user,
        database,
        table,
        canonical: `mysql://${userInfo(user, password, false)}${hostPort}${tail}`,
        shown: `mysql://${userInfo(user, password, true)}${hostPort}${tail}`,
        ...secret,
      };
    }
    default:
      return fail(
        `scheme ${url.protocol.slice(0, -1)} is not taken: http, https, redis, amqp, amqps, mysql or ws`,
      );
  }
}

/** `text` with every occurrence of `secret` replaced by `***` (delivery errors may quote a URI). */
export function redact(text: string, secret: string | undefined): string {
  if (!secret) return text;
  return text.split(secret).join('***').split(encodeURIComponent(secret)).join('***');
}
