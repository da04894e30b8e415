// The audit log (POST /audit/search, admin): filters in the URL, paging,
// each row's before → after on demand.
import { h, clear, t, api, query, setQuery, when, pager, showError } from '../lib.js';

const SIZE = 50;
const KINDS = ['job.', 'job.add', 'job.update', 'job.del', 'job.pause', 'job.resume', 'job.once', 'job.kill',
  'user.', 'user.add', 'user.update', 'user.del', 'user.password', 'login', 'login.fail', 'logout',
  'token.', 'token.revoke', 'token.create', 'node.del', 'notify.'];

export async function auditPage(main, _m, live) {
  const q = query();
  const f = { user: q.get('user') || '', kind: q.get('kind') || '', from: q.get('from') || '', to: q.get('to') || '' };
  const page = Math.max(1, parseInt(q.get('page') || '1', 10) || 1);
  const body = { page, page_size: SIZE };
  if (f.user) body.username = f.user;
  if (f.kind) body.kind = f.kind;
  // datetime-local values are in the browser's zone; the API takes unix ms.
  if (f.from) body.from = new Date(f.from).getTime();
  if (f.to) body.to = new Date(f.to).getTime();

  const inp = {
    user: h('input', { id: 'auser', name: 'username', value: f.user, placeholder: t('f.username'), 'aria-label': t('f.username') }),
    kind: h('input', { id: 'akind', name: 'kind', value: f.kind, list: 'akinds', placeholder: t('audit.kind'), 'aria-label': t('audit.kind'), title: t('audit.kind.hint') }),
    from: h('input', { id: 'afrom', name: 'from', type: 'datetime-local', value: f.from, 'aria-label': t('f.from') }),
    to: h('input', { id: 'ato', name: 'to', type: 'datetime-local', value: f.to, 'aria-label': t('f.to') }),
  };
  const filters = h('form.filters', {
    role: 'search',
    onsubmit: (e) => {
      e.preventDefault();
      setQuery(Object.fromEntries(Object.entries(inp).map(([k, el]) => [k, el.value.trim()])));
    },
  }, inp.user, inp.kind, h('datalist#akinds', KINDS.map((k) => h('option', { value: k }))),
  h('label.inline', t('f.from'), ' ', inp.from), h('label.inline', t('f.to'), ' ', inp.to),
  h('button', { type: 'submit' }, t('search')), h('p.form-err', { role: 'alert' }));
  clear(main, h('h1', t('nav.audit')), filters, h('p.muted', t('loading')));
  let d;
  try {
    d = await api('/audit/search', body);
  } catch (e) {
    if (e.status !== 400) throw e;
    // A bad filter: the API's message names it; the form stays.
    if (!live()) return;
    clear(main, h('h1', t('nav.audit')), filters);
    return showError(filters, e);
  }
  if (!live()) return;
  clear(main, h('h1', t('nav.audit')), filters,
    d.list.length === 0 ? h('p.empty', t('audit.none')) :
      h('div.scroll', h('table.audit',
        h('thead', h('tr', ['audit.at', 'f.username', 'audit.addr', 'audit.kind', 'audit.target', ''].map((k) => h('th', k ? t(k) : null)))),
        h('tbody', d.list.map(row)))),
    pager(page, SIZE, d.total, (p) => setQuery({ ...f, page: p })));
}

function row(r) {
  const tr = h('tr', { 'data-id': r.id, 'data-kind': r.kind },
    h('td', when(r.at)),
    h('td', { title: r.user_id ? 'user ' + r.user_id : null }, r.username || '—'),
    h('td', r.addr || '—'),
    h('td', h('code', r.kind)),
    h('td', target(r.target)),
    h('td.actions', h('button.detail', { type: 'button', 'aria-expanded': 'false', onclick: toggle }, t('audit.detail'))));
  let open = null;
  function toggle(e) {
    const b = e.currentTarget;
    if (open) {
      open.remove();
      open = null;
      b.setAttribute('aria-expanded', 'false');
      return;
    }
    open = h('tr.audit-detail', { 'data-for': r.id }, h('td', { colspan: 6 }, detail(r)));
    tr.after(open);
    b.setAttribute('aria-expanded', 'true');
  }
  return tr;
}

// "job 7" / "user 3" link to their page; anything else is plain text.
function target(s) {
  const m = /^(job|node) (\S+)$/.exec(s || '');
  if (m && m[1] === 'job' && /^\d+$/.test(m[2])) return h('a', { href: 'jobs/' + m[2] }, s);
  return s || '—';
}

function detail(r) {
  return h('div.diff',
    h('div', h('h3', t('audit.before')), json(r.before, r.after, 'before')),
    h('div.arrow', { 'aria-hidden': 'true' }, '→'),
    h('div', h('h3', t('audit.after')), json(r.after, r.before, 'after')));
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// v pretty-printed as text; when both sides are objects, the top-level
// members whose value differs from the other side's are marked.
function json(v, other, side) {
  if (v === null || v === undefined) return h('p.muted', { 'data-side': side }, '—');
  if (!isObj(v) || !isObj(other)) return h('pre', { 'data-side': side }, JSON.stringify(v, null, 2));
  const keys = Object.keys(v);
  return h('pre', { 'data-side': side }, '{\n', keys.map((k, i) => {
    const line = '  ' + JSON.stringify(k) + ': ' + JSON.stringify(v[k], null, 2).replace(/\n/g, '\n  ') +
      (i < keys.length - 1 ? ',' : '') + '\n';
    return JSON.stringify(v[k]) === JSON.stringify(other[k]) ? line : h('mark.chg', { title: t('audit.changed') }, line);
  }), '}');
}
