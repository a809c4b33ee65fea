import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createApiService } from '@hashwire/api';
import { createLogger } from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis } from '@hashwire/registry';
import { createReporter } from '@hashwire/reporter';
import { launchChromium, startRedis } from '@hashwire/testkit';
import type { Page } from 'playwright-core';
import { percentile } from '../measure.js';
import type { BenchResult, BenchSuite } from '../types.js';
import { creditPool } from './api.js';

const CHAIN = 'bench';
const FIRST_PAINT_TARGET_MS = 1000;
const RENDER_TARGET_MS = 200;
const BUNDLE_TARGET_BYTES = 150 * 1024;

/** The dashboard's built JS and CSS, gzipped as the api serves them. */
function bundleBytes(): number {
  const dist = join(
    dirname(createRequire(import.meta.url).resolve('@hashwire/dashboard/package.json')),
    'dist',
  );
  const manifest = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8')) as {
    js: string;
    css: string;
  };
  return [manifest.js, manifest.css].reduce(
    (sum, file) => sum + gzipSync(readFileSync(join(dist, file)), { level: 9 }).length,
    0,
  );
}

/**
 * Milliseconds from navigation start to the first frame painted once `ready` holds, with the
 * browser's cache off (a first visit). `ready` is a function, never a string: the dashboard's
 * Content-Security-Policy (`script-src 'self'`) refuses the eval a string predicate needs.
 */
async function paintAfter(page: Page, url: string, ready: () => boolean): Promise<number> {
  await page.goto(url);
  await page.waitForFunction(ready, undefined, { timeout: 30_000 });
  return page.evaluate(
    () =>
      new Promise<number>((resolve) =>
        requestAnimationFrame(() => setTimeout(() => resolve(performance.now()))),
      ),
  );
}

/**
 * `dashboard.first_paint_ms`: the pool page on localhost, from navigation to the frame showing
 * the pool's figures, against a blank page from a bare Node HTTP server (same measure, same run).
 * `dashboard.account_1k_workers_render_ms`: an account of 1,000 workers on the miner page; each
 * sort by another column re-sorts, filters and pages all 1,000, from the click to the painted frame.
 * `dashboard.bundle_bytes`: the page's JS and CSS, gzipped.
 */
export const dashboardSuite: BenchSuite = {
  name: 'dashboard',
  description:
    'dashboard in headless Chromium: first paint of the pool page, 1,000-worker miner page, bundle size',
  async run(ctx) {
    const rounds = ctx.quick ? 2 : 9;
    const server = await startRedis();
    const redis = connectRedis(server.url, 'bench');
    const keys = createKeyBuilder({ prefix: 'bench:' });
    const logger = createLogger({ name: 'bench', level: 'silent' });
    const reporter = await createReporter({
      id: 'r',
      chain: CHAIN,
      redis,
      keys,
      logger,
      blockPollMs: 3_600_000,
    });
    const api = await createApiService({
      id: 'api',
      redis,
      keys,
      chains: [{ chain: CHAIN, algorithm: 'scrypt' }],
      port: 0,
      httpPortRange: [0, 0],
      rateLimit: false,
      logger,
    });
    const blank = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><html lang="en"><title>blank</title><p>blank</p></html>');
    });
    await new Promise<void>((resolve) => blank.listen(0, '127.0.0.1', resolve));
    const blankUrl = `http://127.0.0.1:${(blank.address() as { port: number }).port}/`;
    const browser = await launchChromium();
    try {
      await reporter.start();
      await creditPool(ctx, reporter.endpoint!, 1);
      await api.start();
      const page = await browser.context.newPage();
      const cdp = await browser.context.newCDPSession(page);
      await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
      const pool: number[] = [];
      const floor: number[] = [];
      for (let i = 0; i < rounds; i++) {
        floor.push(await paintAfter(page, blankUrl, () => document.readyState === 'complete'));
        pool.push(await paintAfter(page, `${api.url}/`, () => document.body.dataset.ready === 'pool'));
      }
      ctx.log(
        `dashboard: pool page ${pool.map((v) => v.toFixed(0)).join(' ')} ms, blank ${floor.map((v) => v.toFixed(0)).join(' ')} ms`,
      );

      await page.goto(`${api.url}/account/acct0`);
      await page.waitForFunction(() => document.querySelectorAll('[data-worker]').length > 0, undefined, {
        timeout: 60_000,
      });
      const summary = await page.locator('[data-testid="workers-summary"]').innerText();
      if (!summary.startsWith('1,000 workers'))
        throw new Error(`dashboard bench: the miner page shows "${summary}"`);
      const columns = ['hashrate', 'accepted', 'lastShareMs', 'name', 'acceptedDiff', 'online'];
      const renders: number[] = [];
      for (let i = 0; i < rounds * 3; i++) {
        const column = columns[i % columns.length]!;
        renders.push(
          await page.evaluate(
            (key) =>
              new Promise<number>((resolve) => {
                const start = performance.now();
                document.querySelector<HTMLButtonElement>(`button[data-sort="${key}"]`)!.click();
                requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - start)));
              }),
            column,
          ),
        );
      }
      ctx.log(`dashboard: 1,000-worker re-sorts ${renders.map((v) => v.toFixed(1)).join(' ')} ms`);

      const firstPaint = Number(percentile(pool, 50).toFixed(1));
      const render = Number(percentile(renders, 50).toFixed(1));
      const bytes = bundleBytes();
      const results: BenchResult[] = [
        {
          name: 'dashboard.first_paint_ms',
          value: firstPaint,
          unit: 'ms',
          higherIsBetter: false,
          baseline: {
            name: 'blank page, bare HTTP server (median)',
            value: Number(percentile(floor, 50).toFixed(1)),
          },
          target: `< ${FIRST_PAINT_TARGET_MS} ms`,
          met: firstPaint < FIRST_PAINT_TARGET_MS,
        },
        {
          name: 'dashboard.account_1k_workers_render_ms',
          value: render,
          unit: 'ms',
          higherIsBetter: false,
          baseline: null,
          target: `< ${RENDER_TARGET_MS} ms`,
          met: render < RENDER_TARGET_MS,
        },
        {
          name: 'dashboard.bundle_bytes',
          value: bytes,
          unit: 'bytes',
          higherIsBetter: false,
          baseline: null,
          target: `< ${BUNDLE_TARGET_BYTES} bytes (gzipped JS + CSS)`,
          met: bytes < BUNDLE_TARGET_BYTES,
        },
      ];
      return results;
    } finally {
      await browser.close();
      await new Promise((resolve) => blank.close(resolve));
      await api.close();
      await reporter.close();
      redis.disconnect();
      await server.stop();
    }
  },
};
