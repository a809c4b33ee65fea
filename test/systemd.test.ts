import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSystemd } from '@hashwire/confgen';
import { describe, expect, it } from 'vitest';
import {
  CLI_BIN,
  cli,
  expectServedThroughHaproxy,
  expectUpgradeKeepsMiner,
  usePoolBackends,
  writeSupervisedPool,
} from './supervised-pool.js';
import {
  type RunningSystemd,
  execStartArgv,
  loadUnits,
  runSystemdUnits,
  unitEnvironment,
} from './systemd-run.js';

// The rendered systemd units are real: every unit `hashwire render systemd` writes (the
// follower, jobmanager, reporter, stratum servers, api), with HAProxy run by this machine's own
// Debian haproxy.service (what operations.md tells operators to use) pointed at the rendered
// haproxy.cfg by a drop-in, started, ordered and stopped as systemd does (systemd-run.ts:
// systemd is not running on this machine, so it is not systemd itself). The stratum servers
// join HAProxy through the follower alone: haproxy.cfg is rendered with no server in it.

const DEBIAN_HAPROXY_UNIT = '/lib/systemd/system/haproxy.service';
const backends = usePoolBackends('systemd');

const STRATUM_UNITS = [
  'hashwire-stratum-litecoin-regtest-1.service',
  'hashwire-stratum-litecoin-regtest-2.service',
];

describe('the rendered systemd units', () => {
  it('are read back word for word: the stand-in unquotes ExecStart= and Environment= as systemd does', () => {
    const hostile = ['/srv/my pool/100% $HOME ${X}.toml', 'say "hi" \\ \'there\'', '', 'a$$b%%c'];
    const units = renderSystemd({
      workingDir: '/srv/my pool',
      services: [
        {
          name: 'hashwire-words-1',
          description: 'words',
          exec: ['/usr/bin/env', ...hostile],
          timeoutStopSec: 20,
          env: Object.fromEntries(hostile.map((value, i) => [`WORD${i}`, value])),
        },
      ],
    });
    const unitDir = join(backends.dir, 'words');
    mkdirSync(unitDir);
    for (const [name, text] of Object.entries(units)) writeFileSync(join(unitDir, name), text);
    const unit = loadUnits(unitDir).get('hashwire-words-1.service')!;
    const env = unitEnvironment(unit);
    expect(env).toEqual(Object.fromEntries(hostile.map((value, i) => [`WORD${i}`, value])));
    expect(execStartArgv(unit, { ...env, HOME: '/root', X: 'x' })).toEqual(['/usr/bin/env', ...hostile]);
  });

  it('run the follower and every service beside Debian’s haproxy.service; the stratum servers join HAProxy, miners get shares accepted, and a stratum server is upgraded with its miner connected', async () => {
    const { dir } = backends;
    const masterSocket = join(dir, 'haproxy-master.sock');
    const pidFile = join(dir, 'haproxy.pid');
    const pool = await writeSupervisedPool(backends, {
      haproxy: { masterSocket },
      circus: { workingDir: dir },
    });
    // The units, and Debian's haproxy.service pointed at the rendered haproxy.cfg (operations.md:
    // haproxy.configFile and haproxy.masterSocket equal to the unit's CONFIG and -S; here set by
    // a drop-in instead of in /etc).
    const unitDir = join(dir, 'units');
    const render = await cli(['render', 'systemd', '--config', pool.file, '--out-dir', unitDir]);
    expect(render.code, render.output).toBe(0);
    copyFileSync(DEBIAN_HAPROXY_UNIT, join(unitDir, 'haproxy.service'));
    mkdirSync(join(unitDir, 'haproxy.service.d'));
    writeFileSync(
      join(unitDir, 'haproxy.service.d', 'hashwire.conf'),
      `[Service]\nEnvironment="CONFIG=${pool.haproxyCfg}" "PIDFILE=${pidFile}" "EXTRAOPTS=-S ${masterSocket}"\n`,
    );
    expect(readdirSync(unitDir).sort()).toEqual([
      'haproxy.service',
      'haproxy.service.d',
      'hashwire-api-1.service',
      'hashwire-follow-haproxy.service',
      'hashwire-jobmanager-litecoin-regtest-1.service',
      'hashwire-reporter-litecoin-regtest-1.service',
      ...STRATUM_UNITS,
      'hashwire.target',
    ]);

    const logDir = join(dir, 'log');
    mkdirSync(logDir);
    const log = (unit: string) => readFileSync(join(logDir, `${unit}.log`), 'utf8');
    const logs = () =>
      ['haproxy.service', 'hashwire-follow-haproxy.service', ...STRATUM_UNITS]
        .map((unit) => {
          try {
            return `--- ${unit} ---\n${log(unit).slice(-4000)}`;
          } catch {
            return `--- ${unit}: no log ---`;
          }
        })
        .join('\n');
    let systemd: RunningSystemd | undefined;
    try {
      // `systemctl start hashwire.target haproxy.service`
      systemd = runSystemdUnits(unitDir, ['hashwire.target', 'haproxy.service'], { logDir });
      const started = systemd.units.map((u) => u.unit);
      // After= ordering: HAProxy before its follower, the stratum servers after everything else.
      expect(started.indexOf('haproxy.service')).toBeLessThan(
        started.indexOf('hashwire-follow-haproxy.service'),
      );
      expect(started.slice(-2).sort()).toEqual(STRATUM_UNITS);
      expect(systemd.argv.get(STRATUM_UNITS[1]!)).toEqual([
        process.execPath,
        CLI_BIN,
        'run',
        'stratum',
        '--instance',
        '2',
        '--config',
        pool.file,
      ]);
      expect(systemd.argv.get('haproxy.service')).toEqual([
        '/usr/sbin/haproxy',
        '-Ws',
        '-f',
        pool.haproxyCfg,
        '-p',
        pidFile,
        '-S',
        masterSocket,
      ]);
      const live = await expectServedThroughHaproxy(
        pool,
        backends,
        () => log('hashwire-follow-haproxy.service'),
        logs,
      );
      // Each stratum unit's main process (its master) stays through the upgrade, never restarted.
      const running = systemd;
      await expectUpgradeKeepsMiner(pool, live, 'systemd', () =>
        running.units.filter((u) => STRATUM_UNITS.includes(u.unit)).map((u) => [u.child.pid, u.starts]),
      );

      // `systemctl stop hashwire.target haproxy.service`: the stratum units first (ordered after
      // the rest), each unit's KillSignal to its main process, all its processes gone (the
      // stratum master's workers with it) before TimeoutStopSec, and a clean exit for systemd.
      expect(systemd.units.map((u) => [u.unit, u.starts])).toEqual(started.map((name) => [name, 1]));
      const exits = await systemd.stop();
      systemd = undefined;
      expect(exits.filter((e) => e.result !== 'success')).toEqual([]);
      expect(
        exits
          .map((e) => e.unit)
          .slice(0, 2)
          .sort(),
      ).toEqual(STRATUM_UNITS);
      expect(exits.map((e) => e.unit).sort()).toEqual([...started].sort());
    } finally {
      if (systemd) {
        console.error(logs());
        await systemd.stop();
      }
    }
  }, 240_000);
});
