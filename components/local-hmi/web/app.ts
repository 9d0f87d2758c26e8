/// <reference lib="dom" />
/**
 * LocalHmi's single-page app: the operator panel a tablet on the site's LAN opens at
 * https://<gateway>:8443/. Plain TypeScript and DOM, bundled by scripts/build.js with uPlot into
 * app.js and app.css (no CDN, no inline script or style: the server's CSP allows 'self' only).
 * Pages are chosen by the URL's hash (#/alarms), so a reload stays on the page.
 */
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { api, ApiError, setCsrfToken, setUnauthorizedHandler } from './api';
import { confirmDialog, toast } from './dialog';
import { h, pill, replace } from './dom';
import { LiveEvents } from './events';
import type { Page, PageContext } from './page';
import { alarmsPage } from './pages/alarms';
import { controlPage } from './pages/control';
import { devicesPage } from './pages/devices';
import { healthPage } from './pages/health';
import { mountLogin } from './pages/login';
import { overviewPage } from './pages/overview';
import { trendsPage } from './pages/trends';
import { hmiStats } from './stats';
import type { CloudState, Session } from './types';

const PAGES: Page[] = [overviewPage, alarmsPage, devicesPage, trendsPage, controlPage, healthPage];

const root = document.getElementById('app')!;
const live = new LiveEvents();
let session: Session | undefined;
let unmount: (() => void) | undefined;
let chromeOffs: (() => void)[] = [];

/** For the browser test and the benchmark (read-only figures, no secrets). */
(window as unknown as { __hmi: unknown }).__hmi = { stats: hmiStats, events: live.counts, live };

function pageFromHash(): Page {
  const id = location.hash.replace(/^#\/?/, '').split('?')[0];
  return PAGES.find((p) => p.id === id) ?? PAGES[0]!;
}

function showLogin(): void {
  unmount?.();
  unmount = undefined;
  for (const off of chromeOffs) off();
  chromeOffs = [];
  live.stop();
  session = undefined;
  setCsrfToken('');
  document.body.dataset.page = 'login';
  mountLogin(root, (s) => startApp(s));
}

async function changePassword(): Promise<void> {
  const v = await confirmDialog({
    title: 'Change your password',
    body: 'Your current password, then the new one (the gateway says if it is too short).',
    confirmLabel: 'Change',
    fields: [
      { name: 'current', label: 'Current password', type: 'password', required: true },
      { name: 'next', label: 'New password', type: 'password', required: true },
    ],
  });
  if (!v) return;
  try {
    await api.changePassword(v.current!, v.next!);
    toast('Password changed', 'ok');
  } catch (err) {
    toast(`Password not changed: ${err instanceof Error ? err.message : String(err)}`, 'error');
  }
}

function startApp(s: Session): void {
  session = s;
  setCsrfToken(s.csrfToken);
  const nav = h('nav', { class: 'nav', 'aria-label': 'Pages' });
  const cloud = h('span', { class: 'cloud', id: 'cloud-state' }, pill('unknown'));
  const link = h('span', { class: 'link', id: 'live-state', title: 'live updates' }, pill('connecting', 'unknown'));
  const site = h('span', { class: 'site', id: 'site-id' }, '');
  const main = h('main', { id: 'page' });
  const header = h(
    'header',
    { class: 'top' },
    h('div', { class: 'brand' }, h('strong', {}, 'dCMMS Edge'), site),
    h('div', { class: 'status' }, h('span', { class: 'sub' }, 'cloud'), cloud, h('span', { class: 'sub' }, 'live'), link),
    h(
      'div',
      { class: 'user' },
      h('span', { id: 'user' }, `${s.user} (${s.role})`),
      h('button', { class: 'secondary', onclick: () => void changePassword() }, 'Password'),
      h(
        'button',
        {
          class: 'secondary',
          id: 'logout',
          onclick: async () => {
            await api.logout().catch(() => undefined);
            location.hash = '';
            showLogin();
          },
        },
        'Log out',
      ),
    ),
  );
  replace(root, header, nav, main);
  const setCloud = (c: CloudState): void => replace(cloud, pill(c.state));
  chromeOffs = [live.on('cloud', setCloud), live.onState((up) => replace(link, up ? pill('connected', 'online') : pill('reconnecting', 'offline')))];
  live.start();
  // The site id and the cloud state for the header; the overview page reads the same again.
  api
    .overview()
    .then((o) => {
      site.textContent = o.siteId;
      document.title = `${o.siteId} – dCMMS Edge`;
      setCloud(o.cloud);
    })
    .catch(() => undefined);

  const ctx: PageContext = { session: s, live, canAct: s.role === 'operator' || s.role === 'admin' };
  const show = (): void => {
    const page = pageFromHash();
    replace(nav, PAGES.map((p) => h('a', { href: `#/${p.id}`, class: p === page ? 'active' : '', 'aria-current': p === page ? 'page' : null, 'data-page': p.id }, p.title)));
    unmount?.();
    main.replaceChildren();
    main.dataset.page = page.id;
    document.body.dataset.page = page.id;
    hmiStats.page = page.id;
    unmount = page.mount(main, ctx);
  };
  window.onhashchange = show;
  show();
}

setUnauthorizedHandler(() => {
  if (!session) return;
  toast('Your session ended; log in again.', 'error');
  showLogin();
});

api.session().then(
  (s) => startApp(s),
  (err) => {
    if (!(err instanceof ApiError) || err.status !== 401) toast(`The gateway did not answer: ${err instanceof Error ? err.message : String(err)}`, 'error');
    showLogin();
  },
);
