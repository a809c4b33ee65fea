import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/** Debian's Chromium (`apt-get install chromium`; `./hashwire test` and `./hashwire bench` install it). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export interface HeadlessChromium {
  /** A context of its own, from a fresh profile: no state from any earlier run. */
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Headless Chromium for the dashboard's browser tests and bench, driven by playwright-core. The
 * machine's network may be closed: everything that would reach out (updates, sync, QUIC,
 * background fetches) is off, and the profile is a fresh temporary folder.
 */
export async function launchChromium(options: { executablePath?: string } = {}): Promise<HeadlessChromium> {
  const profile = mkdtempSync(join(tmpdir(), 'hw-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: options.executablePath ?? CHROMIUM_PATH,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    return {
      context,
      async close() {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
}
