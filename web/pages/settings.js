// Notification settings (GET/POST /notify/settings, admin): a form per
// channel, a Test button per channel (/notify/test) and the alert log
// (/notify/log). Secrets are write-only: the API says "set" or "unset", the
// field stays empty and is sent only when something is typed in it.
import { h, clear, t, api, session, query, setQuery, when, pager, toast, field, showError } from '../lib.js';

// [channel, notify_type, [member, kind]...]; kind: text, secret, bool, json, or a list of choices.
const CHANNELS = [
  ['email', 1, [['smtp_url', 'text'], ['from', 'text'], ['username', 'text'], ['password', 'secret'],
    ['starttls', ['try', 'required', 'off']], ['tls_verify', 'bool'], ['ca_file', 'text']]],
  ['feishu', 2, [['webhook_url', 'text'], ['secret', 'secret']]],
  ['dingtalk', 3, [['webhook_url', 'text'], ['secret', 'secret']]],
  ['wecom', 4, [['webhook_url', 'text']]],
  ['slack', 5, [['webhook_url', 'text']]],
  ['webhook', 6, [['url', 'text'], ['secret', 'secret'], ['headers', 'json']]],
];
const EVENTS = ['failed', 'timeout', 'killed', 'lost', 'recovered', 'missed', 'node_down'];
const SIZE = 20;

export async function settingsPage(main, _m, live) {
  clear(main, h('h1', t('nav.settings')), h('p.muted', t('loading')));
  let s;
  try {
    s = await api('/notify/settings');
  } catch (e) {
    // An admin from before the channel settings existed has no such route.
    if (e.status !== 404 && e.code !== 1204) throw e;
    if (!live()) return;
    return clear(main, h('h1', t('nav.settings')), h('p#notify-unavailable.empty', t('set.unavailable')));
  }
  if (!live()) return;
  const reload = () => settingsPage(main, _m, live);
  const lang = h('select#ns-language', { 'aria-label': t('set.language') },
    [['en', 'English'], ['zh-CN', '中文']].map(([v, l]) => h('option', { value: v, selected: v === (s.language || 'en') }, l)));
  lang.addEventListener('change', async () => {
    try { await api('/notify/settings', { language: lang.value }); toast(t('saved')); } catch (e) { toast(e.message, true); reload(); }
  });
  const logBox = h('section#notify-log.card', h('h2', t('set.log')), h('p.muted', t('loading')));
  clear(main, h('h1', t('nav.settings')),
    h('p.muted', t('set.intro')),
    h('label.inline.card', t('set.language'), ' ', lang),
    h('div.channels', CHANNELS.map((c) => channelForm(c, s[c[0]] || {}, reload))),
    logBox);
  alertLog(logBox, live);
}

function channelForm([ch, type, members], cur, reload) {
  const inputs = {};
  const fields = members.map(([k, kind]) => {
    const name = ch + '.' + k;
    const id = 'ns-' + ch + '-' + k;
    let el, label = t('set.' + k);
    if (kind === 'secret') {
      el = h('input', { id, name, type: 'password', autocomplete: 'new-password', placeholder: t('set.secret.keep') });
      const set = cur[k] === 'set';
      label = [label, ' ', h('span.badge.' + (set ? 's-success' : 's-other'), { id: id + '-state' }, t(set ? 'set.set' : 'set.unset'))];
    } else if (kind === 'bool') {
      el = h('input', { id, name, type: 'checkbox', checked: cur[k] !== false });
    } else if (kind === 'json') {
      el = h('textarea', { id, name, rows: 3, value: JSON.stringify(cur[k] || {}, null, 1) });
    } else if (Array.isArray(kind)) {
      el = h('select', { id, name }, kind.map((v) => h('option', { value: v, selected: v === cur[k] }, v)));
    } else {
      el = h('input', { id, name, value: cur[k] || '', autocomplete: 'off' });
    }
    inputs[k] = [el, kind];
    return field(label, el, name);
  });
  // Only what changed is sent: a partial body changes only what it names.
  const changes = () => {
    const out = {};
    for (const [k, [el, kind]] of Object.entries(inputs)) {
      if (kind === 'secret') { if (el.value !== '') out[k] = el.value; continue; }
      if (kind === 'bool') { if (el.checked !== (cur[k] !== false)) out[k] = el.checked; continue; }
      if (kind === 'json') {
        const txt = el.value.trim() || '{}';
        if (txt === JSON.stringify(cur[k] || {}, null, 1)) continue;
        try { out[k] = JSON.parse(txt); } catch { throw Object.assign(new Error(t('set.badjson')), { field: ch + '.' + k }); }
        continue;
      }
      if (el.value !== (cur[k] || '')) out[k] = el.value;
    }
    return out;
  };
  const secrets = members.filter(([, kind]) => kind === 'secret').map(([k]) => k)
    .filter((k) => cur[k] === 'set');
  const to = h('input', { id: 'ns-' + ch + '-to', value: session.user ? String(session.user.id) : '', inputmode: 'numeric', 'aria-label': t('set.test.to') });
  const result = h('output.test-result', { id: 'ns-' + ch + '-result' });
  const form = h('form.card.channel', {
    'data-channel': ch,
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const body = changes();
        if (!Object.keys(body).length) return toast(t('set.nochange'));
        await api('/notify/settings', { [ch]: body });
        toast(t('saved'));
        reload();
      } catch (err) { showError(form, err); }
    },
  }, h('h2', t('ch.' + ch)), h('p.form-err', { role: 'alert' }),
  h('div.grid', fields),
  h('div.buttons',
    h('button.primary', { type: 'submit', id: 'ns-' + ch + '-save' }, t('save')),
    secrets.map((k) => h('button.danger', { type: 'button', onclick: async () => {
      if (!confirm(t('set.unset.confirm', { k: t('set.' + k), ch: t('ch.' + ch) }))) return;
      try { await api('/notify/settings', { [ch]: { [k]: null } }); toast(t('saved')); reload(); } catch (err) { showError(form, err); }
    } }, t('set.unset.do', { k: t('set.' + k) })))),
  h('div.buttons',
    h('label.inline', t('set.test.to'), ' ', to),
    h('button', { type: 'button', id: 'ns-' + ch + '-test', onclick: async () => {
      const ids = to.value.split(/[\s,]+/).filter(Boolean).map(Number);
      result.textContent = t('loading');
      try {
        const d = await api('/notify/test', { notify_type: type, notify_to_array: ids });
        result.className = 'test-result ok';
        result.textContent = t('set.test.ok', { n: d.sent_to, a: d.answer || '' }) +
          (d.skipped && d.skipped.length ? ' ' + t('set.test.skipped', { ids: d.skipped.join(', ') }) : '');
      } catch (err) {
        result.className = 'test-result bad';
        result.textContent = err.message + (err.data && err.data.answer ? ' — ' + err.data.answer : '');
      }
    } }, t('set.test')), result));
  return form;
}

// The alert log, newest first; its page and event filter in the URL.
async function alertLog(box, live) {
  const q = query();
  const page = Math.max(1, parseInt(q.get('page') || '1', 10) || 1);
  const ev = EVENTS.includes(q.get('event')) ? q.get('event') : '';
  const body = { page, page_size: SIZE };
  if (ev) body.event = ev;
  const sel = h('select#nl-event', { 'aria-label': t('set.event'), onchange: (e) => setQuery({ event: e.target.value }) },
    h('option', { value: '' }, t('set.event.any')), EVENTS.map((v) => h('option', { value: v, selected: v === ev }, v)));
  let d;
  try {
    d = await api('/notify/log', body);
  } catch (e) {
    if (live()) clear(box, h('h2', t('set.log')), h('p.error', { role: 'alert' }, e.message));
    return;
  }
  if (!live()) return;
  clear(box, h('h2', t('set.log')), h('div.filters', sel),
    d.list.length === 0 ? h('p.empty', t('set.log.none')) :
      h('div.scroll', h('table.alerts',
        h('thead', h('tr', ['set.created', 'set.event', 'set.channel', 'f.run', 'f.job', 'set.to', 'f.status', 'f.attempts', 'set.answer', 'set.done'].map((k) => h('th', t(k))))),
        h('tbody', d.list.map((r) => h('tr', { 'data-id': r.id },
          h('td', when(r.created)), h('td', r.event), h('td', r.channel_name || String(r.channel)),
          h('td', r.run_id ? h('a', { href: 'runs/' + r.run_id }, '#' + r.run_id) : '—'),
          h('td', r.job_id ? h('a', { href: 'jobs/' + r.job_id }, '#' + r.job_id) : (r.node_uuid || '—')),
          h('td', (r.recipients || []).join(', ') || '—'),
          h('td', h('span.badge.s-' + ({ sent: 'success', failed: 'failed', pending: 'running', sending: 'running' }[r.result] || 'other'), r.result)),
          h('td', String(r.attempts)), h('td.answer', r.answer || '—'),
          h('td', r.result === 'pending' ? when(r.next_at) : when(r.done_at))))))),
    pager(page, SIZE, d.total, (p) => setQuery({ event: ev, page: p })));
}
