import { h, clear, t, api, session, when, toast, field, showError } from '../lib.js';

export async function accountPage(main, _m, live) {
  const d = await api('/user/token/search', { page_size: 100, user_id: session.user.id });
  if (!live()) return;
  const reload = () => accountPage(main, _m, live);
  const oldp = h('input', { type: 'password', id: 'old_password', name: 'old_password', autocomplete: 'current-password' });
  const newp = h('input', { type: 'password', id: 'new_password', name: 'new_password', autocomplete: 'new-password' });
  const form = h('form.card', {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api('/user/change_pw', { old_password: oldp.value, new_password: newp.value });
        toast(t('pw.changed')); oldp.value = newp.value = '';
        showError(form, {});
      } catch (err) { showError(form, err); }
    },
  }, h('h2', t('pw.change')), h('p.form-err', { role: 'alert' }),
  field(t('f.old_password'), oldp, 'old_password'), field(t('f.new_password'), newp, 'new_password', t('h.password')),
  h('button.primary', { type: 'submit' }, t('pw.change')));
  const u = session.user;
  clear(main, h('h1', t('nav.account')),
    h('p', `${u.username} · ${t('role.' + u.role)}`),
    form,
    h('section.card', h('h2', t('tokens')),
      h('table', h('thead', h('tr', ['ID', 'f.kind', 'f.created', 'f.expires', 'actions'].map((k) => h('th', k === 'ID' ? k : t(k))))),
        h('tbody', d.list.map((k) => h('tr',
          h('td', String(k.id)), h('td', t('kind.' + k.kind), k.current ? h('strong', ' (' + t('tokens.current') + ')') : null),
          h('td', when(k.created * 1000)), h('td', k.expires ? when(k.expires * 1000) : t('never')),
          h('td', k.current ? null : h('button.danger', { type: 'button', onclick: async () => {
            try { await api('/user/token/del', { id: k.id }); toast(t('deleted')); reload(); } catch (err) { toast(err.message, true); }
          } }, t('tokens.revoke')))))))));
}
