import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type RunningCircus, parseCircusIni, runCircusIni } from './circus-run.js';
import {
  CLI_BIN,
  cli,
  expectServedThroughHaproxy,
  expectUpgradeKeepsMiner,
  usePoolBackends,
  writeSupervisedPool,
} from './supervised-pool.js';

// The rendered circus.ini is real: every watcher it names (HAProxy, the follower, jobmanager,
// reporter, stratum servers) started exactly as circusd starts it (circus-run.ts: circusd itself
// is not installable on this machine), and the stratum servers join HAProxy through the
// follower alone: haproxy.cfg is rendered with no server in it.

const backends = usePoolBackends('circus');

describe('the rendered circus.ini', () => {
  it('runs HAProxy, the follower and every service; the stratum servers join HAProxy, miners get shares accepted, and a stratum server is upgraded with its miner connected', async () => {
    const { dir } = backends;
    const pool = await writeSupervisedPool(backends, {
      circus: { workingDir: dir, logDir: join(dir, 'log') },
    });
    const iniFile = join(dir, 'circus.ini');
    const render = await cli(['render', 'circus', '--config', pool.file, '--out', iniFile]);
    expect(render.code, render.output).toBe(0);
    const ini = parseCircusIni(readFileSync(iniFile, 'utf8'));
    expect(ini.watchers.map((w) => [w.name, w.options.priority, w.options.stop_signal])).toEqual([
      ['haproxy', '50', 'SIGUSR1'],
      ['follow-haproxy', '40', 'SIGTERM'],
      ['jobmanager', '30', 'SIGTERM'],
      ['stratum', '10', 'SIGTERM'],
      ['reporter', '20', 'SIGTERM'],
      ['api', '5', 'SIGTERM'],
    ]);

    let circus: RunningCircus | undefined;
    const log = (name: string) => readFileSync(join(dir, 'log', name), 'utf8');
    const logs = () =>
      ['follow-haproxy', 'stratum', 'haproxy']
        .map((name) => {
          try {
            return `--- ${name} ---\n${log(`${name}.out.log`).slice(-3000)}${log(`${name}.err.log`).slice(-3000)}`;
          } catch {
            return `--- ${name}: no log ---`;
          }
        })
        .join('\n');
    try {
      circus = runCircusIni(ini);
      expect(circus.argv.get('stratum/2')).toEqual([
        process.execPath,
        CLI_BIN,
        'run',
        'stratum',
        '--config',
        pool.file,
        '--instance',
        '2',
      ]);
      const live = await expectServedThroughHaproxy(
        pool,
        backends,
        () => log('follow-haproxy.out.log'),
        logs,
      );
      // The watcher's processes (the stratum masters) stay through the upgrade.
      const running = circus;
      await expectUpgradeKeepsMiner(pool, live, 'circus', () =>
        running.processes.filter((p) => p.watcher === 'stratum').map((p) => p.child.pid),
      );

      // Stopped in the documented order (stratum first, as `circusctl stop stratum` then `quit`),
      // each with its stop_signal: all exit on their own.
      const exits = await circus.stop();
      circus = undefined;
      expect(exits.filter((e) => e.signal === 'SIGKILL')).toEqual([]);
      expect(exits.map((e) => [e.watcher, e.code]).sort()).toEqual(
        [
          ['api', 0],
          ['follow-haproxy', 0],
          ['haproxy', 0],
          ['jobmanager', 0],
          ['reporter', 0],
          ['stratum', 0],
          ['stratum', 0],
        ].sort(),
      );
    } finally {
      if (circus) {
        console.error(logs());
        await circus.stop();
      }
    }
  }, 240_000);
});
