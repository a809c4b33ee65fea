import { readFileSync } from 'node:fs';
import { type CircusRenderInput, RenderInputError, renderCircus } from '@hashwire/confgen';
import { describe, expect, it } from 'vitest';
import { expectGolden, goldenPath } from './golden.js';

const cli = '/usr/bin/node /opt/hashwire/packages/cli/dist/bin.js run';
const config = '--config /etc/hashwire/pool.toml --instance $(circus.wid)';

const pool: CircusRenderInput = {
  workingDir: '/opt/hashwire',
  logDir: '/var/log/hashwire',
  env: { NODE_ENV: 'production', HASHWIRE_LOG__LEVEL: 'info' },
  watchers: [
    { kind: 'jobmanager', cmd: `${cli} jobmanager ${config}`, numprocesses: 2 },
    { kind: 'reporter', cmd: `${cli} reporter ${config}`, numprocesses: 2 },
    {
      kind: 'stratum',
      cmd: `${cli} stratum ${config}`,
      numprocesses: 4,
      warmupDelaySec: 2,
      env: { UV_THREADPOOL_SIZE: '8', NODE_ENV: 'production' },
    },
  ],
};

describe('renderCircus', () => {
  it('renders a whole pool exactly', () => {
    expectGolden('circus-pool.ini', renderCircus(pool));
  });

  it('renders a custom endpoint, timeouts and an api watcher exactly', () => {
    expectGolden(
      'circus-custom.ini',
      renderCircus({
        workingDir: '/srv/hashwire',
        logDir: '/srv/hashwire/logs/',
        endpoint: 'ipc:///run/hashwire/circus.sock',
        pubsubEndpoint: 'ipc:///run/hashwire/circus-pub.sock',
        checkDelaySec: 2,
        logMaxBytes: 1_048_576,
        logBackups: 0,
        watchers: [
          {
            kind: 'stratum',
            name: 'stratum-eu',
            cmd: `${cli} stratum ${config}`,
            numprocesses: 2,
            gracefulTimeoutSec: 120,
          },
          {
            kind: 'stratum',
            name: 'stratum-us',
            cmd: `${cli} stratum ${config}`,
            numprocesses: 1,
            priority: 11,
          },
          { kind: 'api', cmd: `${cli} api ${config}`, numprocesses: 1 },
        ],
      }),
    );
  });

  it('every golden is an INI file as Circus reads it: sections of unique `key = value` lines', () => {
    for (const name of ['circus-pool.ini', 'circus-custom.ini']) {
      const sections = new Map<string, Set<string>>();
      let current: Set<string> | undefined;
      for (const [i, line] of readFileSync(goldenPath(name), 'utf8').split('\n').entries()) {
        if (line === '' || line.startsWith('#')) continue;
        const section = /^\[([^\]]+)\]$/.exec(line);
        if (section) {
          expect(sections.has(section[1] as string), `${name}:${i + 1} repeats [${section[1]}]`).toBe(false);
          current = new Set();
          sections.set(section[1] as string, current);
          continue;
        }
        const entry = /^([A-Za-z_][\w.]*) = (\S.*)$/.exec(line);
        expect(entry, `${name}:${i + 1} is not "key = value": ${line}`).not.toBeNull();
        expect(current, `${name}:${i + 1} is outside a section`).toBeDefined();
        expect(current?.has(entry?.[1] as string), `${name}:${i + 1} repeats ${entry?.[1]}`).toBe(false);
        current?.add(entry?.[1] as string);
      }
      expect([...sections.keys()][0]).toBe('circus');
      for (const [section, keys] of sections) {
        if (section.startsWith('watcher:'))
          expect([...keys]).toEqual(expect.arrayContaining(['cmd', 'numprocesses']));
      }
    }
  });

  it('gives stratum the longest graceful stop and starts it last', () => {
    const text = renderCircus(pool);
    const section = (name: string) => text.split(`[watcher:${name}]`)[1]?.split('\n[')[0] ?? '';
    const value = (name: string, key: string) =>
      Number(new RegExp(`^${key} = (\\d+)$`, 'm').exec(section(name))?.[1]);
    for (const kind of ['jobmanager', 'reporter']) {
      expect(value('stratum', 'graceful_timeout')).toBeGreaterThan(value(kind, 'graceful_timeout'));
      expect(value('stratum', 'priority')).toBeLessThan(value(kind, 'priority'));
    }
    expect(section('stratum')).toMatch(/^stop_signal = SIGTERM$/m);
  });

  it('names every bad field', () => {
    const bad = {
      workingDir: '',
      logDir: '/var/log',
      env: { 'BAD-NAME': 'x', GOOD: 'two\nlines' },
      watchers: [
        { kind: 'miner', cmd: 'x', numprocesses: 1 },
        { kind: 'stratum', cmd: '', numprocesses: 1.5 },
        { kind: 'stratum', cmd: 'x', numprocesses: 1 },
      ],
    } as unknown as CircusRenderInput;
    let error: RenderInputError | undefined;
    try {
      renderCircus(bad);
    } catch (e) {
      error = e as RenderInputError;
    }
    expect(error).toBeInstanceOf(RenderInputError);
    const paths = (error?.issues ?? []).map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'workingDir',
        'env.BAD-NAME',
        'env.GOOD',
        'watchers.0.kind',
        'watchers.1.cmd',
        'watchers.1.numprocesses',
      ]),
    );
    expect(error?.message).toContain('watchers.0.kind: must be one of jobmanager, reporter, stratum, api');
  });

  it('refuses two watchers with one name', () => {
    expect(() =>
      renderCircus({
        workingDir: '/',
        logDir: '/',
        watchers: [
          { kind: 'stratum', cmd: 'a', numprocesses: 1 },
          { kind: 'stratum', cmd: 'b', numprocesses: 1 },
        ],
      }),
    ).toThrow('watchers.1.kind: duplicate watcher name stratum (give one of them a name)');
  });
});
