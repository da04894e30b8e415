// Shared helpers: DOM building (text only), the API client, session,
// routing, i18n, time formatting. Plain ES module, no dependencies.
import { dict } from './i18n.js';

// ---- DOM ------------------------------------------------------------------
// h('tag.class', {attrs}, ...children): children are nodes or values shown as
// TEXT (a text node), never parsed as HTML. Attributes starting with "on" are
// listeners; anything else goes through setAttribute (no href="javascript:"
// ever comes from data: links are built from ids and fixed paths).
export function h(sel, attrs, ...kids) {
  const [tagid, ...cls] = sel.split('.');
  const [tag, id] = tagid.split('#');
  const el = document.createElement(tag || 'div');
  if (id) el.id = id;
  if (cls.length) el.className = cls.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    kids.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, kids);
  return el;
}
function add(el, kids) {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    if (Array.isArray(k)) add(el, k);
    else el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}
export function clear(el, ...kids) {
  el.replaceChildren();
  add(el, kids);
  return el;
}

// ---- i18n -----------------------------------------------------------------
export const langs = { en: 'English', 'zh-CN': '中文' };
export let lang = localStorage.getItem('cx.lang') ||
  ((navigator.language || '').toLowerCase().startsWith('zh') ? 'zh-CN' : 'en');
export function setLang(l) {
  lang = l;
  localStorage.setItem('cx.lang', l);
  document.documentElement.lang = l;
}
// t('key', {n: 3}) -> the text in the current language, "{n}" filled in.
export function t(key, vars) {
  let s = (dict[lang] && dict[lang][key]) || dict.en[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll('{' + k + '}', v);
  return s;
}

// ---- theme ----------------------------------------------------------------
export function theme() { return localStorage.getItem('cx.theme') || 'system'; }
export function setTheme(v) {
  if (v === 'system') localStorage.removeItem('cx.theme');
  else localStorage.setItem('cx.theme', v);
  if (v === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = v;
}

// ---- session ----------------------------------------------------------------
// The bearer token lives in sessionStorage: per tab, gone when the tab
// closes, never sent by the browser on its own (so no CSRF to defend).
export const session = {
  get token() { return sessionStorage.getItem('cx.token'); },
  get user() { try { return JSON.parse(sessionStorage.getItem('cx.user')); } catch { return null; } },
  set(token, user) {
    if (token) sessionStorage.setItem('cx.token', token);
    sessionStorage.setItem('cx.user', JSON.stringify(user));
  },
  clear() { sessionStorage.removeItem('cx.token'); sessionStorage.removeItem('cx.user'); },
};
const ranks = { viewer: 1, operator: 2, admin: 3 };
// can('operator'): the signed-in user's role is at least that.
export function can(role) {
  const u = session.user;
  return !!u && (ranks[u.role] || 0) >= ranks[role];
}

// ---- API ------------------------------------------------------------------
export class ApiError extends Error {
  constructor(msg, code, field, status, data) { super(msg); Object.assign(this, { code, field, status, data }); }
}
// The API is served beside ui/: relative to the base, so a proxy's
// sub-path is kept.
export function apiURL(path) { return new URL('../' + path.replace(/^\//, ''), document.baseURI); }
export async function api(path, body) {
  const opt = { method: body === undefined ? 'GET' : 'POST', headers: {} };
  const tok = session.token;
  if (tok) opt.headers.Authorization = 'Bearer ' + tok;
  if (body !== undefined) {
    opt.body = JSON.stringify(body);
    opt.headers['Content-Type'] = 'application/json';
  }
  let r, j;
  try {
    r = await fetch(apiURL(path), opt);
    j = await r.json();
  } catch (e) {
    throw new ApiError(t('err.network') + ' (' + e.message + ')', -1, null, 0);
  }
  if (j.code !== 0) {
    if (r.status === 401 && path !== '/login' && path !== '/user/change_pw') {
      session.clear();
      go('login?next=' + encodeURIComponent(here()));
    }
    throw new ApiError(j.msg, j.code, j.field, r.status, j.data);
  }
  return j.data;
}

// ---- routing --------------------------------------------------------------
let onRoute = () => {};
export function setRouter(fn) { onRoute = fn; }
export function basePath() { return new URL(document.baseURI).pathname; }
// The page path below ui/ with the query ("jobs?page=2").
export function here() {
  const b = basePath();
  const p = location.pathname.startsWith(b) ? location.pathname.slice(b.length) : '';
  return p + location.search;
}
export function go(rel, replace) {
  const u = new URL(rel, document.baseURI);
  if (replace) history.replaceState(null, '', u);
  else history.pushState(null, '', u);
  onRoute();
}
// Relative links inside the app navigate without a reload.
document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[href]');
  if (!a || a.target || e.defaultPrevented || e.button !== 0 ||
      e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const u = new URL(a.href);
  if (u.origin !== location.origin || !u.pathname.startsWith(basePath())) return;
  e.preventDefault();
  go(u.href);
});
export function query() { return new URLSearchParams(location.search); }
// Replaces the page's query with the non-empty members of obj.
export function setQuery(obj) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const p = here().split('?')[0];
  go(p + (q.toString() ? '?' + q : ''), true);
}

// ---- time -----------------------------------------------------------------
// <time> in the browser's zone, the UTC instant on hover. ms: unix ms.
export function when(ms) {
  if (!ms) return h('span.muted', '—');
  const d = new Date(ms);
  return h('time', { datetime: d.toISOString(), title: d.toISOString().replace('.000Z', 'Z') + ' UTC' },
    d.toLocaleString(lang, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }));
}
export function duration(ms) {
  if (ms < 0 || !isFinite(ms)) return '—';
  if (ms < 1000) return ms + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  return Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
}

// ---- small widgets --------------------------------------------------------
export function badge(status) { return h('span.badge.s-' + String(status).replace(/[^a-z]/g, ''), t('st.' + status)); }
export function toast(msg, bad) {
  const el = h('div.toast' + (bad ? '.bad' : ''), { role: 'status' }, msg);
  document.body.append(el);
  setTimeout(() => el.remove(), 4000);
}
export function pager(page, size, total, onPage) {
  const pages = Math.max(1, Math.ceil(total / size));
  return h('nav.pager', { 'aria-label': t('pager') },
    h('button', { type: 'button', disabled: page <= 1, onclick: () => onPage(page - 1) }, '‹ ' + t('prev')),
    h('span', t('page.of', { p: page, n: pages, total })),
    h('button', { type: 'button', disabled: page >= pages, onclick: () => onPage(page + 1) }, t('next') + ' ›'));
}
export function field(label, input, name, hint) {
  return h('label.field', { 'data-field': name },
    h('span.lbl', label), input,
    hint ? h('small.hint', hint) : null,
    h('small.err', { id: 'err-' + name, role: 'alert' }));
}
// Shows an API error on the field it names (or in a box at the top).
export function showError(form, e) {
  form.querySelectorAll('.field.bad').forEach((f) => f.classList.remove('bad'));
  form.querySelectorAll('.err').forEach((x) => { x.textContent = ''; });
  const box = form.querySelector('.form-err');
  // The field the API names; else its member ("env.PATH" -> env,
  // "notify_to_array[2]" -> notify_to_array).
  const at = (n) => form.querySelector('.field[data-field="' + CSS.escape(n) + '"]');
  const f = e.field && (at(e.field) || at(String(e.field).replace(/[[.].*$/, '')));
  if (f) {
    f.classList.add('bad');
    f.querySelector('.err').textContent = e.message;
    const inp = f.querySelector('input,select,textarea');
    if (inp) inp.focus();
    if (box) box.textContent = '';
  } else if (box) box.textContent = e.message || '';
  else toast(e.message, true);
}
