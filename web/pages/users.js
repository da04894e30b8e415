import { h, clear, t, api, session, when, toast, field, showError } from '../lib.js';

const ROLES = ['viewer', 'operator', 'admin'];
// Where alerts reach a user (the robots mention them by these).
const CONTACTS = ['email', 'feishu_id', 'mobile', 'dingtalk_id', 'wecom_id', 'slack_id'];

export async function usersPage(main, _m, live) {
  const d = await api('/user/search', { page_size: 500 });
  if (!live()) return;
  const reload = () => usersPage(main, _m, live);
  const nf = {
    username: h('input', { name: 'username', id: 'nu-name', autocomplete: 'off' }),
    password: h('input', { name: 'password', id: 'nu-pass', type: 'password', autocomplete: 'new-password' }),
    role: h('select', { name: 'role', id: 'nu-role' }, ROLES.map((r) => h('option', { value: r }, t('role.' + r)))),
    email: h('input', { name: 'email', id: 'nu-email', type: 'email' }),
    feishu_id: h('input', { name: 'feishu_id', id: 'nu-feishu' }),
    mobile: h('input', { name: 'mobile', id: 'nu-mobile', type: 'tel' }),
    dingtalk_id: h('input', { name: 'dingtalk_id', id: 'nu-dingtalk' }),
    wecom_id: h('input', { name: 'wecom_id', id: 'nu-wecom' }),
    slack_id: h('input', { name: 'slack_id', id: 'nu-slack' }),
  };
  const add = h('form.card.inline-form', {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api('/user/add', Object.fromEntries(Object.entries(nf).map(([k, el]) => [k, el.value])));
        toast(t('saved')); reload();
      } catch (err) { showError(add, err); }
    },
  }, h('h2', t('users.add')), h('p.form-err', { role: 'alert' }),
  h('div.grid', Object.entries(nf).map(([k, el]) => field(t('f.' + k), el, k))),
  h('button.primary', { type: 'submit' }, t('users.add')));

  const row = (u) => {
    const role = h('select', { 'aria-label': t('f.role') + ' ' + u.username,
      onchange: async (e) => {
        try { await api('/user/update', { id: u.id, role: e.target.value }); toast(t('saved')); } catch (err) { toast(err.message, true); reload(); }
      } }, ROLES.map((r) => h('option', { value: r, selected: r === u.role }, t('role.' + r))));
    const contact = async (k) => {
      const v = prompt(t('f.' + k), u[k] || '');
      if (v === null) return;
      try { await api('/user/update', { id: u.id, [k]: v }); toast(t('saved')); reload(); } catch (err) { toast(err.message, true); }
    };
    return h('tr', { 'data-id': u.id },
      h('td', String(u.id)), h('td', u.username), h('td', role), h('td', u.email || '—'), h('td', u.feishu_id || '—'), h('td', when(u.created * 1000)),
      h('td.actions',
        h('select', { 'aria-label': t('users.contact') + ' ' + u.username, 'data-act': 'contact',
          onchange: (e) => { const k = e.target.value; e.target.value = ''; if (k) contact(k); } },
        h('option', { value: '' }, t('users.contact')),
        CONTACTS.map((k) => h('option', { value: k }, t('f.' + k) + (u[k] ? ': ' + u[k] : '')))),
        h('button', { type: 'button', onclick: async () => {
          const p = prompt(t('users.newpw', { u: u.username }));
          if (!p) return;
          try { await api('/user/change_pw', { id: u.id, new_password: p }); toast(t('saved')); } catch (err) { toast(err.message, true); }
        } }, t('users.resetpw')),
        session.user && session.user.id === u.id ? null : h('button.danger', { type: 'button', onclick: async () => {
          if (!confirm(t('confirm.user', { u: u.username }))) return;
          try { await api('/user/del', { id: u.id }); toast(t('deleted')); reload(); } catch (err) { toast(err.message, true); }
        } }, t('a.delete'))));
  };
  clear(main, h('h1', t('nav.users')),
    h('div.scroll', h('table',
      h('thead', h('tr', ['ID', 'f.username', 'f.role', 'f.email', 'f.feishu_id', 'f.created', 'actions'].map((k) => h('th', k === 'ID' ? k : t(k))))),
      h('tbody', d.list.map(row)))),
    add);
}
