import { h, clear, t, api, can, query, setQuery, when, badge, pager, toast } from '../lib.js';

const SIZE = 20;

async function act(what, ids, after) {
  try {
    if (what === 'once' || what === 'kill') {
      for (const id of ids) await api('/job/' + what, { job_id: id });
    } else if (what === 'del') {
      if (!confirm(t('confirm.del', { n: ids.length }))) return;
      await api('/job/del', { ids });
    } else {
      await api('/job/' + what, { ids });
    }
    toast(t('done.' + what, { n: ids.length }));
    after();
  } catch (e) {
    toast(e.message, true);
  }
}

export async function jobsPage(main, _m, live) {
  const q = query();
  const f = { q: q.get('q') || '', node: q.get('node') || '', type: q.get('type') || '', enabled: q.get('enabled') || '' };
  const page = Math.max(1, parseInt(q.get('page') || '1', 10) || 1);
  const body = { page, page_size: SIZE, name: f.q };
  if (f.node) body.run_on = f.node;
  if (f.type) body.type = +f.type;
  if (f.enabled) body.enabled = f.enabled === '1';
  const apply = (extra) => setQuery({ ...f, ...extra });

  const name = h('input', { type: 'search', id: 'q', name: 'q', value: f.q, placeholder: t('jobs.search'), 'aria-label': t('jobs.search') });
  const node = h('input', { id: 'fnode', value: f.node, placeholder: t('f.node_uuid'), 'aria-label': t('f.node_uuid') });
  const type = h('select', { id: 'ftype', 'aria-label': t('f.type') },
    [['', t('any.type')], ['1', 'cmd'], ['2', 'http']].map(([v, l]) => h('option', { value: v, selected: v === f.type }, l)));
  const en = h('select', { id: 'fenabled', 'aria-label': t('f.enabled') },
    [['', t('any.state')], ['1', t('enabled')], ['0', t('paused')]].map(([v, l]) => h('option', { value: v, selected: v === f.enabled }, l)));
  const filters = h('form.filters', {
    role: 'search',
    onsubmit: (e) => { e.preventDefault(); setQuery({ q: name.value, node: node.value, type: type.value, enabled: en.value }); },
  }, name, node, type, en, h('button', { type: 'submit' }, t('search')));

  const head = h('div.head', h('h1', t('nav.jobs')),
    can('operator') ? h('a.button.primary', { href: 'jobs/new', id: 'new-job' }, '+ ' + t('jobs.new')) : null);
  clear(main, head, filters, h('p.muted', t('loading')));
  const t0 = performance.now();
  const d = await api('/job/search', body);
  if (!live()) return;

  const sel = new Set();
  const op = can('operator');
  const bulk = h('div.bulk', { hidden: true },
    h('span.count'),
    [['once', t('a.run')], ['pause', t('a.pause')], ['resume', t('a.resume')], ['del', t('a.delete')]].map(([k, l]) =>
      h('button', { type: 'button', 'data-bulk': k, onclick: () => act(k, [...sel], () => apply({ page })) }, l)));
  const upd = () => {
    bulk.hidden = sel.size === 0;
    bulk.querySelector('.count').textContent = t('selected', { n: sel.size });
  };
  const all = op ? h('input', {
    type: 'checkbox', 'aria-label': t('select.all'),
    onchange: (e) => main.querySelectorAll('tbody input[type=checkbox]').forEach((c) => { c.checked = e.target.checked; c.dispatchEvent(new Event('change')); }),
  }) : null;

  const rows = d.list.map((j) => {
    const last = h('td.last', h('span.muted', '…'));
    const next = h('td.next', j.enabled ? h('span.muted', '…') : h('span.muted', '—'));
    const acts = op ? h('td.actions',
      h('button', { type: 'button', title: t('a.run'), 'data-act': 'once', onclick: () => act('once', [j.id], () => apply({ page })) }, t('a.run')),
      j.enabled
        ? h('button', { type: 'button', 'data-act': 'pause', onclick: () => act('pause', [j.id], () => apply({ page })) }, t('a.pause'))
        : h('button', { type: 'button', 'data-act': 'resume', onclick: () => act('resume', [j.id], () => apply({ page })) }, t('a.resume')),
      h('button', { type: 'button', 'data-act': 'kill', onclick: () => act('kill', [j.id], () => {}) }, t('a.kill')),
      h('a.button', { href: 'jobs/' + j.id, 'data-act': 'edit' }, t('a.edit')),
      h('a.button', { href: 'jobs/new?clone=' + j.id, 'data-act': 'clone' }, t('a.clone')),
      h('button.danger', { type: 'button', 'data-act': 'del', onclick: () => act('del', [j.id], () => apply({ page })) }, t('a.delete'))) : null;
    const row = h('tr', { 'data-id': j.id },
      op ? h('td', h('input', { type: 'checkbox', 'aria-label': t('select') + ' ' + j.name, onchange: (e) => { e.target.checked ? sel.add(j.id) : sel.delete(j.id); upd(); } })) : null,
      h('td', String(j.id)),
      h('td.name', h('a', { href: 'jobs/' + j.id }, j.name), j.note ? h('div.muted.small', j.note) : null),
      h('td', j.type === 2 ? 'http' : 'cmd'),
      h('td', h('code', j.spec)),
      h('td', badge(j.enabled ? 'enabled' : 'paused')),
      last, next, acts);
    row._fill = async () => {
      const [lg, fj] = await Promise.all([
        api('/job/log', { job_id: j.id, page_size: 1 }).catch(() => null),
        j.enabled ? api('/job/find?id=' + j.id).catch(() => null) : null,
      ]);
      const r = lg && lg.list[0];
      clear(last, r ? h('a', { href: 'runs/' + r.id }, badge(r.status), ' ', when(r.start_time)) : h('span.muted', t('never')));
      if (j.enabled) clear(next, fj && fj.next && fj.next[0] ? when(Date.parse(fj.next[0])) : h('span.muted', '—'));
    };
    return row;
  });

  clear(main, head, filters, bulk,
    d.list.length === 0 ? h('p.empty', t('jobs.none')) :
      h('div.scroll', h('table.jobs',
        h('thead', h('tr', op ? h('th', all) : null, h('th', 'ID'), h('th', t('f.name')), h('th', t('f.type')), h('th', t('f.spec')),
          h('th', t('f.state')), h('th', t('f.lastrun')), h('th', t('f.nextfire')), op ? h('th', t('actions')) : null)),
        h('tbody', rows))),
    pager(page, SIZE, d.total, (p) => apply({ page: p })));
  // The list is usable now; the per-row extras fill in afterwards.
  // For the speed bench (bench/console_bench.py): when the list was usable.
  window.__cxJobsReady = { at: performance.now(), took: performance.now() - t0 };
  main.dataset.ready = '1';
  rows.forEach((r) => r._fill());
  // One call for the whole page: a "Follow" link on each job running now.
  api('/job/running', {}).then((rn) => {
    if (!live()) return;
    const by = new Map(rn.list.map((x) => [x.job_id, x.run_id]));
    rows.forEach((r) => {
      const run = by.get(+r.dataset.id);
      if (run) r.querySelector('td.name').append(' ', h('a.button.follow', { href: 'runs/' + run }, t('live.follow')));
    });
  }).catch(() => {});
}
