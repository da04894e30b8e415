import { h, clear, t, api, query, setQuery, when, duration, badge, pager } from '../lib.js';

const SIZE = 20;
const STATUSES = ['running', 'success', 'failed', 'timeout', 'killed', 'skipped', 'lost', 'error', 'missed'];
const TRIGGERS = ['cron', 'once', 'retry', 'misfire', 'missed'];
// "failed,timeout" -> the known values among them (the API refuses others).
const list = (v, known) => [...new Set(v.split(',').map((x) => x.trim()).filter((x) => known.includes(x)))];
// Every way a run can fail, as one choice.
const FAILS = ['failed', 'timeout', 'killed', 'lost', 'error'].join(',');
// A select of '' (any), the presets, each value, and the URL's value when
// it lists several of them otherwise.
const pick = (id, label, any, known, prefix, cur, presets = []) => h('select', { id, 'aria-label': label },
  [['', any], ...presets, ...known.map((v) => [v, t(prefix + v)]),
    ...(cur.includes(',') && !presets.some(([v]) => v === cur) ? [[cur, cur]] : [])]
    .map(([v, l]) => h('option', { value: v, selected: v === cur }, l)));
// datetime-local value (browser zone) -> unix ms
const local = (v) => (v ? new Date(v).getTime() : undefined);

export async function runsPage(main, _m, live) {
  const q = query();
  const f = { job: q.get('job') || '', node: q.get('node') || '', status: list(q.get('status') || '', STATUSES).join(','), trigger: list(q.get('trigger') || '', TRIGGERS).join(','), from: q.get('from') || '', to: q.get('to') || '' };
  const running = q.get('view') === 'running';
  const page = Math.max(1, parseInt(q.get('page') || '1', 10) || 1);
  const body = { page, page_size: SIZE };
  if (/^\d+$/.test(f.job)) body.job_id = +f.job;
  if (f.node) body.node_uuid = f.node;
  if (f.status) body.status = f.status.split(',');
  if (f.trigger) body.trigger = f.trigger.split(',');
  if (f.from) body.from = local(f.from);
  if (f.to) body.to = local(f.to);

  const inp = {
    job: h('input', { id: 'rjob', inputmode: 'numeric', value: f.job, placeholder: t('f.job_id'), 'aria-label': t('f.job_id') }),
    node: h('input', { id: 'rnode', value: f.node, placeholder: t('f.node_uuid'), 'aria-label': t('f.node_uuid'), list: 'rnodes', autocomplete: 'off' }),
    status: pick('rstatus', t('f.status'), t('any.status'), STATUSES, 'st.', f.status, [[FAILS, t('runs.failed')]]),
    trigger: pick('rtrigger', t('f.trigger'), t('any.trigger'), TRIGGERS, 'tr.', f.trigger),
    from: h('input', { id: 'rfrom', type: 'datetime-local', value: f.from, 'aria-label': t('f.from') }),
    to: h('input', { id: 'rto', type: 'datetime-local', value: f.to, 'aria-label': t('f.to') }),
  };
  // The node box offers the known nodes (uuid, labelled by host name).
  const nodeList = h('datalist#rnodes');
  api('/node/search', { page_size: 500 }).then((d) => nodeList.append(...d.list.map((n) => h('option', { value: n.uuid }, `${n.hostname || n.uuid} ${n.ip || ''}`)))).catch(() => {});
  const filters = h('form.filters', {
    role: 'search',
    onsubmit: (e) => {
      e.preventDefault();
      const v = Object.fromEntries(Object.entries(inp).map(([k, el]) => [k, el.value.trim()]));
      setQuery(running ? { view: 'running', job: v.job, node: v.node } : v);
    },
  }, inp.job, inp.node, nodeList, running ? null : [inp.status, inp.trigger, h('label.inline', t('f.from'), ' ', inp.from), h('label.inline', t('f.to'), ' ', inp.to)],
  h('button', { type: 'submit' }, t('search')));
  const keep = (extra) => '?' + new URLSearchParams(Object.entries({ job: f.job, node: f.node, ...extra }).filter(([, v]) => v)).toString();
  const tabs = h('nav.tabs', { 'aria-label': t('nav.runs') },
    h('a', { href: 'runs' + keep({}), id: 'runs-all', 'aria-current': running ? null : 'page' }, t('runs.all')),
    h('a', { href: 'runs' + keep({ view: 'running' }), id: 'runs-running', 'aria-current': running ? 'page' : null }, t('runs.running')));
  clear(main, h('h1', t(running ? 'runs.running' : 'nav.runs')), tabs, filters, h('p.muted', t('loading')));
  if (running) return runningView(main, f, filters, tabs, live);
  const d = await api('/job/log', body);
  if (!live()) return;
  clear(main, h('h1', t('nav.runs')), tabs, filters,
    d.list.length === 0 ? h('p.empty', t('runs.none')) :
      h('div.scroll', h('table.runs',
        h('thead', h('tr', ['f.run', 'f.job', 'f.node', 'f.trigger', 'f.status', 'f.start', 'f.duration', 'f.exit', 'f.attempts'].map((k) => h('th', t(k))))),
        h('tbody', d.list.map((r) => h('tr', { 'data-id': r.id },
          h('td', h('a', { href: 'runs/' + r.id }, '#' + r.id)),
          h('td', h('a', { href: 'jobs/' + r.job_id }, r.name)),
          h('td', { title: r.node_uuid }, r.hostname || r.node_uuid),
          h('td', t('tr.' + r.trigger)),
          h('td', badge(r.status)),
          h('td', when(r.start_time)),
          h('td', r.end_time ? duration(r.end_time - r.start_time) : '—'),
          h('td', String(r.exit_code)),
          h('td', String(r.attempts))))))),
    pager(page, SIZE, d.total, (p) => setQuery({ ...f, page: p })));
}

// The runs running now (POST /job/running), each linked to its live page.
// The route gives ids only: job names fill in afterwards (one /job/find per
// distinct job, at most 20), node names from `nodes` when the caller has them.
export function runningTable(list, nodes) {
  const host = new Map((nodes || []).map((n) => [n.uuid, n.hostname || n.uuid]));
  const names = new Map();
  const rows = list.map((r) => {
    const job = h('a', { href: 'jobs/' + r.job_id }, '#' + r.job_id);
    if (!names.has(r.job_id)) names.set(r.job_id, []);
    names.get(r.job_id).push(job);
    return h('tr', { 'data-run': r.run_id },
      h('td', h('a', { href: 'runs/' + r.run_id }, '#' + r.run_id)),
      h('td', job),
      h('td', { title: r.node_uuid }, host.get(r.node_uuid) || r.node_uuid),
      h('td', when(r.start * 1000)),
      h('td', String(r.attempt)),
      h('td', r.pid ? String(r.pid) : '—'),
      h('td', h('a.button.follow', { href: 'runs/' + r.run_id }, t('live.follow'))));
  });
  [...names.keys()].slice(0, 20).forEach((id) => api('/job/find?id=' + id).then((j) => {
    names.get(id).forEach((a) => { a.textContent = j.name; });
  }).catch(() => {}));
  return h('div.scroll', h('table.running',
    h('thead', h('tr', ['f.run', 'f.job', 'f.node', 'f.start', 'f.attempt', 'f.pid', ''].map((k) => h('th', k ? t(k) : null)))),
    h('tbody', rows)));
}

// runs?view=running: the same job / node filters, the running route.
async function runningView(main, f, filters, tabs, live) {
  const body = {};
  if (/^\d+$/.test(f.job)) body.job_id = +f.job;
  if (f.node) body.node_uuid = f.node;
  const [d, nodes] = await Promise.all([api('/job/running', body), api('/node/search', { page_size: 100 }).catch(() => null)]);
  if (!live()) return;
  clear(main, h('h1', t('runs.running')), tabs, filters,
    d.list.length === 0 ? h('p.empty', t('live.none')) : runningTable(d.list, nodes && nodes.list));
}
