import { h, clear, t, api, when, badge } from '../lib.js';
import { runningTable } from './runs.js';

// Runs per day of the last 7 days by status: stacked bars, drawn with DOM
// boxes (no chart library, no inline style attribute: heights are set
// through the CSSOM, which the CSP allows).
function chart(days) {
  const max = Math.max(1, ...days.map((d) => d.total));
  return h('div.chart', { role: 'img', 'aria-label': t('dash.week') },
    days.map((d) => {
      const other = Math.max(0, d.total - d.success - d.failed - d.running);
      const bar = h('div.bar', { title: `${d.date}: ${d.success} ${t('st.success')}, ${d.failed} ${t('st.failed')}, ${d.running} ${t('st.running')}` },
        [['failed', d.failed], ['running', d.running], ['other', other], ['success', d.success]].map(([k, n]) => {
          const seg = h('div.seg.s-' + k);
          seg.style.height = (100 * n / max) + '%';
          return seg;
        }));
      return h('div.col', bar, h('small', d.date.slice(5)), h('small.muted', String(d.total)));
    }));
}

function card(label, value, sub) {
  return h('div.card.stat', h('div.muted', label), h('div.big', String(value)), sub ? h('div.muted', sub) : null);
}

// GET /cluster: standalone, or the admin that leads (host and pid).
function leaderCard(c) {
  const el = c.error ? h('div.error', c.error)
    : c.mode === 'standalone' ? h('div.big', t('dash.standalone'))
      : c.leader ? h('div.big', { title: c.leader.id }, c.leader.hostname)
        : h('div.muted', t('dash.noleader'));
  const sub = c.leader && c.mode !== 'standalone' ? `pid ${c.leader.pid}${c.self ? ' · ' + t('dash.thisadmin') : ''}` : null;
  return h('div#dash-leader.card.stat', h('div.muted', t('dash.leader')), el, sub ? h('div.muted', sub) : null);
}

export async function dashboardPage(main, _m, live) {
  clear(main, h('h1', t('nav.dashboard')), h('p.muted', t('loading')));
  const day = 86400000;
  const [today, week, fails, nodes, running, cluster] = await Promise.all([
    api('/statis/today'), api('/statis/week'),
    api('/job/log', { success: false, from: Date.now() - day, page_size: 10 }),
    api('/node/search', { page_size: 100 }),
    // Optional: without it (coordination unreachable) the rest still shows.
    api('/job/running', {}).catch((e) => ({ error: e.message })),
    api('/cluster').catch((e) => ({ error: e.message })),
  ]);
  if (!live()) return;
  clear(main,
    h('h1', t('nav.dashboard')),
    h('div.cards',
      card(t('dash.today'), today.total, `${today.success} ${t('st.success')} · ${today.failed} ${t('st.failed')} · ${today.running} ${t('st.running')}`),
      card(t('dash.running'), running.error ? today.procs_running : running.total),
      card(t('dash.jobs'), today.jobs_total, t('dash.enabled', { n: today.jobs_enabled })),
      card(t('dash.nodes'), today.nodes_alive, t('dash.dead', { n: today.nodes_dead })),
      leaderCard(cluster)),
    h('section#dash-running.card', h('div.head', h('h2', t('dash.running')), h('a', { href: 'runs?view=running' }, t('runs.running') + ' →')),
      running.error ? h('p.error', running.error) :
        running.list.length === 0 ? h('p.muted', t('live.none')) : runningTable(running.list.slice(0, 10), nodes.list)),
    h('section.card', h('h2', t('dash.week')), chart(week.days),
      h('div.legend', ['success', 'failed', 'running'].map((k) => h('span', h('i.sw.s-' + k), t('st.' + k)))),
      h('small.muted', t('dash.tz', { tz: today.timezone }))),
    h('section.card', h('h2', t('dash.fails')),
      fails.list.length === 0 ? h('p.muted', t('dash.nofails')) :
        h('table',
          h('thead', h('tr', h('th', t('f.run')), h('th', t('f.job')), h('th', t('f.status')), h('th', t('f.start')))),
          h('tbody', fails.list.map((r) => h('tr',
            h('td', h('a', { href: 'runs/' + r.id }, '#' + r.id)),
            h('td', h('a', { href: 'jobs/' + r.job_id }, r.name)),
            h('td', badge(r.status)), h('td', when(r.start_time))))))),
    h('section.card', h('h2', t('nav.nodes')),
      h('ul.plain', nodes.list.map((n) => h('li', badge(n.alive ? 'alive' : 'dead'), ' ', n.hostname || n.uuid, h('span.muted', ` ${n.ip || ''} · ${t('f.jobs')} ${n.job_count} · ${t('dash.running')} ${n.running}`))))));
}
