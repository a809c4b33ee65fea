import { createHash } from 'node:crypto';
// Bundles the dashboard into dist/ at build time: one script, one stylesheet and the page, no CDN.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(here, 'src/main.ts') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  outdir: out,
  legalComments: 'none',
  logLevel: 'warning',
});
// The page names its assets by content hash, so a browser never runs a stale script after an upgrade.
const hash = (file) =>
  createHash('sha256')
    .update(readFileSync(join(out, file)))
    .digest('hex')
    .slice(0, 12);
const js = `app.${hash('app.js')}.js`;
const css = `app.${hash('app.css')}.css`;
copyFileSync(join(out, 'app.js'), join(out, js));
copyFileSync(join(out, 'app.css'), join(out, css));
rmSync(join(out, 'app.js'));
rmSync(join(out, 'app.css'));
const html = readFileSync(join(here, 'src/index.html'), 'utf8')
  .replace('%APP_JS%', js)
  .replace('%APP_CSS%', css);
writeFileSync(join(out, 'index.html'), html);
writeFileSync(join(out, 'manifest.json'), `${JSON.stringify({ js, css }, null, 2)}\n`);
