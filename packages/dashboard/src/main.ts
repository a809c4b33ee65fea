import './style.css';
import { fill, h } from './dom.js';
import { minerPage } from './miner-page.js';
import { operatorPage } from './operator-page.js';
import { poolPage } from './pool-page.js';

/** One bundle for every page: the path picks the page (the api serves the same HTML at each). */
async function route(main: HTMLElement): Promise<string> {
  const path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === '/') {
    await poolPage(main);
    return 'pool';
  }
  if (path === '/account' || path.startsWith('/account/')) {
    await minerPage(main, decodeURIComponent(path.slice('/account/'.length)));
    return 'account';
  }
  if (path === '/operator') {
    await operatorPage(main);
    return 'operator';
  }
  fill(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/' }, 'Back to the pool')));
  return 'none';
}

const main = document.getElementById('main')!;
route(main).then(
  (page) => {
    for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]'))
      if (a.dataset.nav === page) a.setAttribute('aria-current', 'page');
    document.body.dataset.ready = page;
  },
  (error: unknown) => {
    fill(
      main,
      h('h1', {}, 'The pool’s API did not answer'),
      h('p', { role: 'alert' }, (error as Error).message),
    );
    document.body.dataset.ready = 'error';
  },
);
