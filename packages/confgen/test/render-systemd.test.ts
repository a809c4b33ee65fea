import { RenderInputError, renderSystemd, systemdWord } from '@hashwire/confgen';
import { describe, expect, it } from 'vitest';

const service = {
  name: 'hashwire-stratum-ltc-1',
  description: 'hashwire stratum stratum-ltc-1',
  exec: ['/usr/bin/node', '/opt/hashwire/packages/cli/dist/bin.js', 'run', 'stratum', '--instance', '1'],
  timeoutStopSec: 113,
};

function issues(input: unknown): string[] {
  try {
    renderSystemd(input as Parameters<typeof renderSystemd>[0]);
  } catch (error) {
    if (error instanceof RenderInputError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  return [];
}

describe('renderSystemd', () => {
  it('writes each service with its stop timeout, user and ordering, and a target wanting them all', () => {
    const files = renderSystemd({
      workingDir: '/opt/hashwire',
      user: 'hashwire',
      services: [
        { ...service, name: 'hashwire-reporter-ltc-1', timeoutStopSec: 45 },
        {
          ...service,
          after: ['hashwire-reporter-ltc-1'],
          env: { NODE_ENV: 'production', GREETING: 'pay $5 at 100%' },
        },
      ],
    });
    expect(Object.keys(files)).toEqual([
      'hashwire-reporter-ltc-1.service',
      'hashwire-stratum-ltc-1.service',
      'hashwire.target',
    ]);
    const unit = files['hashwire-stratum-ltc-1.service'] as string;
    expect(unit).toMatch(/^TimeoutStopSec=113$/m);
    expect(unit).toMatch(/^User=hashwire$/m);
    expect(unit).toMatch(/^After=network-online\.target hashwire-reporter-ltc-1\.service$/m);
    expect(unit).toMatch(/^Environment=NODE_ENV=production$/m);
    // No variables are expanded in Environment= (systemd.exec(5)): `$` as is, `%` doubled.
    expect(unit).toMatch(/^Environment="GREETING=pay \$5 at 100%%"$/m);
    expect(unit).toMatch(/^PartOf=hashwire\.target$/m);
    expect(files['hashwire.target']).toMatch(
      /^Wants=hashwire-reporter-ltc-1\.service hashwire-stratum-ltc-1\.service$/m,
    );
  });

  it('quotes words with spaces and keeps % and $ from being expanded', () => {
    expect(systemdWord('/etc/hashwire/pool.toml')).toBe('/etc/hashwire/pool.toml');
    expect(systemdWord('/srv/my pool/100%.toml')).toBe('"/srv/my pool/100%%.toml"');
    expect(systemdWord('$HOME')).toBe('"$$HOME"');
    expect(systemdWord('say "hi"')).toBe('"say \\"hi\\""');
    expect(systemdWord('')).toBe('""');
  });

  it('names every bad field', () => {
    expect(
      issues({
        workingDir: 'relative',
        services: [
          { ...service, exec: ['node', 'bin.js'], timeoutStopSec: 0 },
          { ...service, name: 'bad name' },
        ],
      }),
    ).toEqual([
      'workingDir: must be an absolute path',
      'services.0.exec: the program must be an absolute path (systemd needs one)',
      'services.0.timeoutStopSec: must be positive (seconds)',
      "services.1.name: must be a unit name: letters, digits, ':', '_', '.', '-'",
    ]);
    expect(issues({ workingDir: '/opt', services: [{ ...service, after: ['nowhere'] }] })).toEqual([
      'services.0.after.0: no service nowhere in this render',
    ]);
  });
});
