// The console's entry: layout, navigation and the page router.
import { h, clear, t, lang, langs, setLang, theme, setTheme, session, can, api, go, here, setRouter, basePath } from './lib.js';
import { loginPage } from './pages/login.js';
import { dashboardPage } from './pages/dashboard.js';
import { jobsPage } from './pages/jobs.js';
import { jobEditPage } from './pages/job_edit.js';
import { runsPage } from './pages/runs.js';
import { runPage } from './pages/run.js';
import { nodesPage } from './pages/nodes.js';
import { usersPage } from './pages/users.js';
import { accountPage } from './pages/account.js';

// [pattern, page, least role, nav key]
const routes = [
  [/^$/, dashboardPage, 'viewer', 'nav.dashboard'],
  [/^jobs$/, jobsPage, 'viewer', 'nav.jobs'],
  [/^jobs\/(new|\d+)$/, jobEditPage, 'viewer'],
  [/^runs$/, runsPage, 'viewer', 'nav.runs'],
  [/^runs\/(\d+)$/, runPage, 'viewer'],
  [/^nodes$/, nodesPage, 'viewer', 'nav.nodes'],
  [/^users$/, usersPage, 'admin', 'nav.users'],
  [/^account$/, accountPage, 'viewer', 'nav.account'],
];

const app = document.getElementById('app');
setLang(lang);
setTheme(theme());
let seq = 0;

function shell(path) {
  const navs = routes.filter((r) => r[3] && can(r[2]));
  const cur = path.split('/')[0];
  const main = h('main#main', { tabindex: '-1' });
  const u = session.user;
  const header = h('header.top',
    h('a.brand', { href: './' }, 'Cronix'),
    h('nav.menu', { 'aria-label': t('nav.main') },
      navs.map((r) => {
        const href = r[0].source.replace(/[\^$\\]/g, '') || './';
        const active = (href === './' ? '' : href) === cur;
        return h('a', { href, 'aria-current': active ? 'page' : null }, t(r[3]));
      })),
    h('div.tools',
      h('select', { 'aria-label': t('language'), id: 'lang', onchange: (e) => { setLang(e.target.value); route(); } },
        Object.entries(langs).map(([k, v]) => h('option', { value: k, selected: k === lang }, v))),
      h('select', { 'aria-label': t('theme'), id: 'theme', onchange: (e) => setTheme(e.target.value) },
        ['system', 'light', 'dark'].map((k) => h('option', { value: k, selected: k === theme() }, t('theme.' + k)))),
      u ? h('span.who', { title: t('role.' + u.role) }, u.username) : null,
      h('button', { type: 'button', id: 'logout', onclick: logout }, t('logout'))));
  clear(app, h('a.skip', { href: '#main' }, t('skip')), header, main);
  return main;
}

async function logout() {
  try { await api('/logout', {}); } catch { /* the session ends here anyway */ }
  session.clear();
  go('login');
}

async function route() {
  const my = ++seq;
  const full = here();
  const path = full.split('?')[0].replace(/\/$/, '');
  if (path === 'login') {
    if (session.token) return go('./', true);
    return loginPage(clear(app));
  }
  if (!session.token) return go('login?next=' + encodeURIComponent(full), true);
  const r = routes.find((x) => x[0].test(path));
  const main = shell(path);
  if (!r) return clear(main, h('h1', t('notfound')));
  if (!can(r[2])) return clear(main, h('h1', t('forbidden')));
  document.title = (r[3] ? t(r[3]) + ' · ' : '') + 'Cronix';
  try {
    await r[1](main, path.match(r[0]), () => my === seq);
  } catch (e) {
    if (my === seq) clear(main, h('p.error', { role: 'alert' }, e.message));
  }
}

setRouter(route);
window.addEventListener('popstate', route);
// The role may have changed since the session began.
if (session.token) api('/user/find').then((u) => { session.set(null, u); }).catch(() => {});
route();
export { basePath };
