import { h, t, api, session, go, query, showError, field } from '../lib.js';

export function loginPage(root) {
  const user = h('input', { name: 'username', id: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { name: 'password', id: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form.card.login', {
    onsubmit: async (e) => {
      e.preventDefault();
      btn.disabled = true;
      try {
        const d = await api('/login', { username: user.value, password: pass.value });
        session.set(d.token, d.user);
        const next = query().get('next') || '';
        // Only a page of this app: no absolute or scheme URL.
        go(/^[a-z][a-z0-9/_?=&%.-]*$/i.test(next) && !next.includes('//') && !next.includes(':') ? next : './', true);
      } catch (err) {
        showError(form, err);
        btn.disabled = false;
      }
    },
  },
  h('h1', 'Cronix'),
  h('p.muted', t('login.title')),
  field(t('f.username'), user, 'username'),
  field(t('f.password'), pass, 'password'),
  h('p.form-err', { role: 'alert' }),
  h('button.primary', { type: 'submit', id: 'login' }, t('login')));
  const btn = form.querySelector('button');
  root.append(h('div.center', form));
}
