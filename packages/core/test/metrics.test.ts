import { type Socket, createSocket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { type Metrics, createMetrics } from '../src/index.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A statsd agent: a real UDP socket collecting every line it receives. */
async function statsdListener() {
  const socket: Socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  const lines: string[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  socket.on('message', (message) => {
    for (const line of message.toString('utf8').split('\n')) if (line !== '') lines.push(line);
    for (const w of waiters.splice(0)) {
      if (lines.length >= w.count) w.resolve();
      else waiters.push(w);
    }
  });
  return {
    port: socket.address().port,
    lines,
    /** Resolves once `count` lines have arrived (the test's own timeout bounds the wait). */
    until(count: number) {
      if (lines.length >= count) return Promise.resolve(lines);
      return new Promise<string[]>((resolve) => waiters.push({ count, resolve: () => resolve(lines) }));
    },
  };
}

function metrics(options: Parameters<typeof createMetrics>[0]): Metrics {
  const m = createMetrics(options);
  cleanups.push(() => m.close());
  return m;
}

function feed(m: Metrics) {
  m.shares('accepted', 40);
  m.shares('stale', 2);
  m.connections(17);
  m.jobPush(0.0042);
  m.blocks('accepted');
  m.rpc('reporter.shares', 0.0015);
  m.redisError();
  m.batches('credited', 3);
  m.leader(true, 1_795_440_207_730_123);
  m.draining(true);
}

describe('statsd', () => {
  it('mirrors every series to a real UDP listener with the prefix and tags (DogStatsD)', async () => {
    const agent = await statsdListener();
    const m = metrics({
      service: 'reporter',
      id: 'r1',
      chain: 'ltc-main',
      processMetrics: false,
      statsd: { host: '127.0.0.1', port: agent.port, prefix: 'pool.', tags: { env: 'test' } },
    });
    feed(m);
    const lines = await agent.until(11);
    const tags = 'service:reporter,id:r1,chain:ltc-main,env:test';
    expect(new Set(lines)).toEqual(
      new Set([
        `pool.shares:40|c|#${tags},result:accepted`,
        `pool.shares:2|c|#${tags},result:stale`,
        `pool.connections:17|g|#${tags}`,
        `pool.job_push:4.2|ms|#${tags}`,
        `pool.blocks:1|c|#${tags},state:accepted`,
        `pool.rpc:1.5|ms|#${tags},method:reporter.shares`,
        `pool.redis_errors:1|c|#${tags}`,
        `pool.batches:3|c|#${tags},outcome:credited`,
        `pool.leader:1|g|#${tags}`,
        `pool.lease_epoch:1795440207730123|g|#${tags}`,
        `pool.draining:1|g|#${tags}`,
      ]),
    );
  });

  it('writes Telegraf tags and gathers lines into one datagram when buffering', async () => {
    const agent = await statsdListener();
    const m = createMetrics({
      service: 'stratum',
      id: 's1',
      processMetrics: false,
      statsd: { host: '127.0.0.1', port: agent.port, tagFormat: 'telegraf', bufferBytes: 1400 },
    });
    m.shares('accepted', 5);
    m.connections(3);
    await m.close(); // flushes the buffer
    const lines = await agent.until(2);
    expect(lines).toEqual([
      'hashwire.shares,service=stratum,id=s1,result=accepted:5|c',
      'hashwire.connections,service=stratum,id=s1:3|g',
    ]);
  });

  it('refuses a bad statsd configuration naming the field', () => {
    expect(() =>
      createMetrics({ service: 'x', id: 'y', processMetrics: false, statsd: { host: 'h', port: 0 } }),
    ).toThrow(/statsd\.port/);
    expect(() => createMetrics({ service: '', id: 'y' })).toThrow(/service/);
    expect(() => createMetrics({ service: 'x', id: 'y', chain: '' })).toThrow(/chain/);
  });
});

/**
 * A checker of the Prometheus text exposition format 0.0.4: every line is a `# HELP`, a
 * `# TYPE` or a sample `name{label="value",...} value`; each family is declared once before
 * its samples; histogram buckets are cumulative and end with `le="+Inf"` equal to `_count`.
 */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE}`;
// Values are Go floats: Prometheus parses them with strconv.ParseFloat, which takes NaN and Inf in any case.
const VALUE =
  '(?:[+-]?(?:\\d+\\.?\\d*(?:[eE][+-]?\\d+)?|\\.\\d+(?:[eE][+-]?\\d+)?)|[+-]?[Ii][Nn][Ff]|[Nn][Aa][Nn])';
const SAMPLE_LINE = new RegExp(
  `^(${NAME})(?:\\{((?:${LABEL}(?:,${LABEL})*)?,?)\\})? (${VALUE})(?: -?\\d+)?$`,
);
const HELP_LINE = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE_LINE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

function parseExposition(text: string) {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split('\n');
  expect(lines.at(-1), 'text ends with a newline').toBe('');
  for (const [i, line] of lines.slice(0, -1).entries()) {
    const where = `line ${i + 1}: ${line}`;
    if (line === '') continue; // blank lines are allowed between families
    let m = HELP_LINE.exec(line);
    if (m) {
      expect(help.has(m[1]!), `${where} (HELP twice)`).toBe(false);
      help.set(m[1]!, m[2]!);
      continue;
    }
    m = TYPE_LINE.exec(line);
    if (m) {
      expect(types.has(m[1]!), `${where} (TYPE twice)`).toBe(false);
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = SAMPLE_LINE.exec(line);
    expect(m, where).not.toBeNull();
    const [, name, labelText, valueText] = m!;
    const labels: Record<string, string> = {};
    for (const pair of (labelText ?? '').matchAll(
      new RegExp(`([a-zA-Z_][a-zA-Z0-9_]*)=(${LABEL_VALUE})`, 'g'),
    )) {
      expect(labels[pair[1]!], `${where} (label twice)`).toBeUndefined();
      labels[pair[1]!] = JSON.parse(pair[2]!) as string;
    }
    const family = types.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, '');
    expect(types.has(family), `${where} (sample before its TYPE)`).toBe(true);
    const value = /^\+?inf$/i.test(valueText!) ? Number.POSITIVE_INFINITY : Number(valueText);
    samples.push({ name: name!, labels, value });
  }
  return { types, help, samples };
}

function checkHistograms(types: Map<string, string>, samples: Sample[]) {
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, { buckets: [number, number][]; count?: number }>();
    for (const s of samples) {
      if (!s.name.startsWith(family)) continue;
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      const entry = series.get(key) ?? { buckets: [] };
      series.set(key, entry);
      if (s.name === `${family}_bucket`) {
        expect(le, `${family} bucket without le`).toBeDefined();
        entry.buckets.push([le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), s.value]);
      } else if (s.name === `${family}_count`) entry.count = s.value;
    }
    for (const { buckets, count } of series.values()) {
      expect(buckets.at(-1)?.[0]).toBe(Number.POSITIVE_INFINITY);
      expect(buckets.at(-1)?.[1]).toBe(count);
      for (let i = 1; i < buckets.length; i++) {
        expect(buckets[i]![0]).toBeGreaterThan(buckets[i - 1]![0]);
        expect(buckets[i]![1]).toBeGreaterThanOrEqual(buckets[i - 1]![1]);
      }
    }
  }
}

describe('prometheus', () => {
  it('exposes process metrics and every documented series in valid text format', async () => {
    const m = metrics({ service: 'reporter', id: 'r"1\\x', chain: 'ltc-main' });
    feed(m);
    const { types, help, samples } = parseExposition(await m.text());
    checkHistograms(types, samples);

    expect(types.get('hashwire_shares_total')).toBe('counter');
    expect(types.get('hashwire_connections')).toBe('gauge');
    expect(types.get('hashwire_job_push_seconds')).toBe('histogram');
    expect(types.get('hashwire_blocks_total')).toBe('counter');
    expect(types.get('hashwire_rpc_seconds')).toBe('histogram');
    expect(types.get('hashwire_redis_errors_total')).toBe('counter');
    expect(types.get('hashwire_batches_total')).toBe('counter');
    for (const family of types.keys()) expect(help.get(family), `${family} HELP`).toBeTruthy();
    // Default process metrics are there.
    expect(types.has('process_cpu_seconds_total')).toBe(true);
    expect(types.has('nodejs_eventloop_lag_seconds')).toBe(true);

    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        ?.value;
    const who = { service: 'reporter', id: 'r"1\\x', chain: 'ltc-main' }; // escaped and parsed back
    expect(value('hashwire_shares_total', { ...who, result: 'accepted' })).toBe(40);
    expect(value('hashwire_shares_total', { result: 'stale' })).toBe(2);
    // Every documented label value exists from the start.
    expect(value('hashwire_shares_total', { result: 'invalid' })).toBe(0);
    expect(value('hashwire_blocks_total', { state: 'orphaned' })).toBe(0);
    expect(value('hashwire_batches_total', { outcome: 'refused' })).toBe(0);
    expect(value('hashwire_connections', who)).toBe(17);
    expect(value('hashwire_blocks_total', { state: 'accepted' })).toBe(1);
    expect(value('hashwire_redis_errors_total')).toBe(1);
    expect(value('hashwire_batches_total', { outcome: 'credited' })).toBe(3);
    expect(value('hashwire_rpc_seconds_count', { method: 'reporter.shares' })).toBe(1);
    expect(value('hashwire_rpc_seconds_bucket', { method: 'reporter.shares', le: '0.001' })).toBe(0);
    expect(value('hashwire_rpc_seconds_bucket', { method: 'reporter.shares', le: '0.0025' })).toBe(1);
    expect(value('hashwire_job_push_seconds_sum')).toBeCloseTo(0.0042, 10);
    // A microsecond epoch (Redis TIME) is exact in a float64 and printed whole.
    expect(value('hashwire_leader')).toBe(1);
    expect(value('hashwire_lease_epoch')).toBe(1_795_440_207_730_123);
    expect(value('hashwire_draining')).toBe(1);
    m.leader(false, 0);
    m.draining(false);
    const after = parseExposition(await m.text()).samples;
    expect(after.find((s) => s.name === 'hashwire_leader')?.value).toBe(0);
    expect(after.find((s) => s.name === 'hashwire_lease_epoch')?.value).toBe(0);
    expect(after.find((s) => s.name === 'hashwire_draining')?.value).toBe(0);
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('says which version runs, and counts accepted difficulty per chain (statsd too) for a hashrate', async () => {
    const agent = await statsdListener();
    const m = metrics({
      service: 'reporter',
      id: 'r1',
      chain: 'ltc',
      version: '1.4.0+abc1234',
      hashesPerDiff: 65536,
      processMetrics: false,
      statsd: { host: '127.0.0.1', port: agent.port },
    });
    m.acceptedDifficulty(0.5);
    m.acceptedDifficulty(2 ** -9);
    m.acceptedDifficulty(0); // nothing sent
    expect(() => m.acceptedDifficulty(-1)).toThrow(/difficulty must be >= 0/);
    expect(() => m.acceptedDifficulty(Number.NaN)).toThrow(/difficulty must be >= 0/);
    const { types, samples } = parseExposition(await m.text());
    expect(types.get('hashwire_accepted_difficulty_total')).toBe('counter');
    expect(types.get('hashwire_info')).toBe('gauge');
    const find = (name: string) => samples.filter((s) => s.name === name);
    // One series per process: no worker or account label, whatever the number of miners.
    expect(find('hashwire_accepted_difficulty_total')).toEqual([
      {
        name: 'hashwire_accepted_difficulty_total',
        labels: { service: 'reporter', id: 'r1', chain: 'ltc' },
        value: 0.5 + 2 ** -9,
      },
    ]);
    expect(find('hashwire_info')).toEqual([
      {
        name: 'hashwire_info',
        labels: { version: '1.4.0+abc1234', service: 'reporter', id: 'r1', chain: 'ltc' },
        value: 1,
      },
    ]);
    expect(find('hashwire_hashes_per_diff')[0]?.value).toBe(65536);
    expect(await agent.until(2)).toEqual([
      'hashwire.accepted_difficulty:0.5|c|#service:reporter,id:r1,chain:ltc',
      'hashwire.accepted_difficulty:0.001953125|c|#service:reporter,id:r1,chain:ltc',
    ]);
  });

  it('keeps registries of two services apart in one process', async () => {
    const a = metrics({ service: 'stratum', id: 'a', chain: 'ltc', processMetrics: false });
    const b = metrics({ service: 'stratum', id: 'b', chain: 'btc', processMetrics: false });
    a.shares('accepted', 3);
    b.shares('accepted', 5);
    const sharesOf = async (m: Metrics) =>
      parseExposition(await m.text()).samples.find(
        (s) => s.name === 'hashwire_shares_total' && s.labels.result === 'accepted',
      );
    expect(await sharesOf(a)).toMatchObject({ labels: { id: 'a', chain: 'ltc' }, value: 3 });
    expect(await sharesOf(b)).toMatchObject({ labels: { id: 'b', chain: 'btc' }, value: 5 });
  });
});
