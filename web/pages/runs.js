import { h, clear, t, api, query, setQuery, when, duration, badge, pager } from '../lib.js';

const SIZE = 20;
// datetime-local value (browser zone) -> unix ms
const local = (v) => (v ? new Date(v).getTime() : undefined);

export async function runsPage(main, _m, live) {
  const q = query();
  const f = { job: q.get('job') || '', node: q.get('node') || '', result: q.get('result') || '', from: q.get('from') || '', to: q.get('to') || '' };
  const page = Math.max(1, parseInt(q.get('page') || '1', 10) || 1);
  const body = { page, page_size: SIZE };
  if (/^\d+$/.test(f.job)) body.job_id = +f.job;
  if (f.node) body.node_uuid = f.node;
  if (f.result) body.success = f.result === 'success';
  if (f.from) body.from = local(f.from);
  if (f.to) body.to = local(f.to);

  const inp = {
    job: h('input', { id: 'rjob', inputmode: 'numeric', value: f.job, placeholder: t('f.job_id'), 'aria-label': t('f.job_id') }),
    node: h('input', { id: 'rnode', value: f.node, placeholder: t('f.node_uuid'), 'aria-label': t('f.node_uuid') }),
    result: h('select', { id: 'rresult', 'aria-label': t('f.status') },
      [['', t('any.result')], ['success', t('st.success')], ['failed', t('runs.failed')]].map(([v, l]) => h('option', { value: v, selected: v === f.result }, l))),
    from: h('input', { id: 'rfrom', type: 'datetime-local', value: f.from, 'aria-label': t('f.from') }),
    to: h('input', { id: 'rto', type: 'datetime-local', value: f.to, 'aria-label': t('f.to') }),
  };
  const filters = h('form.filters', {
    role: 'search',
    onsubmit: (e) => { e.preventDefault(); setQuery(Object.fromEntries(Object.entries(inp).map(([k, el]) => [k, el.value.trim()]))); },
  }, inp.job, inp.node, inp.result, h('label.inline', t('f.from'), ' ', inp.from), h('label.inline', t('f.to'), ' ', inp.to), h('button', { type: 'submit' }, t('search')));
  clear(main, h('h1', t('nav.runs')), filters, h('p.muted', t('loading')));
  const d = await api('/job/log', body);
  if (!live()) return;
  clear(main, h('h1', t('nav.runs')), filters,
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

function kv(pairs) {
  return h('dl.kv', pairs.map(([k, v]) => [h('dt', t(k)), h('dd', v)]));
}

export async function runPage(main, m, live) {
  const r = await api('/job/run?id=' + m[1]);
  if (!live()) return;
  clear(main,
    h('div.head', h('h1', t('run.title', { id: r.id })), h('a.button', { href: 'runs?job=' + r.job_id }, t('job.runs'))),
    h('section.card', kv([
      ['f.job', h('a', { href: 'jobs/' + r.job_id }, r.name)],
      ['f.status', badge(r.status)],
      ['f.trigger', t('tr.' + r.trigger)],
      ['f.node', `${r.hostname || ''} ${r.ip || ''} (${r.node_uuid})`],
      ['f.command', h('code', r.command)],
      ['f.spec', h('code', r.spec)],
      ['f.scheduled', r.scheduled_at ? when(r.scheduled_at * 1000) : '—'],
      ['f.start', when(r.start_time)],
      ['f.end', when(r.end_time)],
      ['f.duration', r.end_time ? duration(r.end_time - r.start_time) : '—'],
      ['f.exit', String(r.exit_code)],
      ['f.attempts', String(r.attempts)],
    ])),
    h('section.card', h('h2', t('f.output')), h('pre.output', { id: 'run-output', tabindex: '0' }, r.output || '')),
    r.attempt_list && r.attempt_list.length ? h('section.card', h('h2', t('run.attempts')),
      r.attempt_list.map((a) => h('details', { open: a.attempt === r.attempt_list.length },
        h('summary', `#${a.attempt} `, badge(a.status), ' ', when(a.start_time), ` · ${duration(a.end_time - a.start_time)} · ${t('f.exit')} ${a.exit_code}`),
        h('pre.output', a.output || '')))) : null);
}
