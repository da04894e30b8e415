import { h, clear, t, api, can, query, go, field, showError, toast, lang } from '../lib.js';

// [name, kind, options]: every member of SPEC §3 the API takes.
const FIELDS = [
  ['name', 'text'], ['type', 'select', [[1, 'cmd'], [2, 'http']]],
  ['command', 'area'], ['spec', 'text'], ['timezone', 'zone'],
  ['allocation', 'select', [[1, 'alloc.manual'], [2, 'alloc.auto'], [3, 'alloc.broadcast']]], ['run_on', 'node'],
  ['node_selector', 'text'],
  ['enabled', 'check'], ['timeout', 'int'], ['retry_times', 'int'], ['retry_interval', 'int'],
  ['concurrency', 'select', [['forbid', 'forbid'], ['allow', 'allow'], ['replace', 'replace']]],
  ['misfire', 'select', [['run_once', 'run_once'], ['skip', 'skip']]], ['starting_deadline', 'int'],
  ['notify_status', 'select', [[2, 'off'], [1, 'notify.fail']]],
  ['notify_type', 'select', [[0, '—'], [1, 'email'], [2, 'Feishu'], [3, 'DingTalk'], [4, 'WeCom'], [5, 'Slack'], [6, 'webhook']]], ['notify_to_array', 'ids'],
  ['notify_events', 'text'], ['max_duration', 'int'],
  ['http_method', 'select', ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].map((m) => [m, m])],
  ['http_headers', 'json'], ['http_body', 'area'], ['env', 'json'], ['workdir', 'text'],
  ['run_as', 'text'], ['limit_memory_mb', 'int'], ['limit_nproc', 'int'], ['limit_cpu_s', 'int'], ['limit_nofile', 'int'],
  ['note', 'area'],
];
// Fields that only cmd jobs have (hidden for http jobs, values kept).
const CMD_ONLY = ['env', 'workdir', 'run_as', 'limit_memory_mb', 'limit_nproc', 'limit_cpu_s', 'limit_nofile'];
const DEFAULTS = { type: 1, allocation: 1, enabled: true, timeout: 0, retry_times: 0, retry_interval: 0, concurrency: 'forbid', misfire: 'run_once', starting_deadline: 600, notify_status: 2, notify_type: 0, http_method: 'GET', http_headers: {}, env: {}, notify_to_array: [] };

// A plain-language reading of common cron forms; anything else is read
// field by field. The fire times below it come from the server.
export function describe(spec) {
  const s = spec.trim().replace(/^CRON_TZ=\S+\s+/, '');
  const macro = { '@yearly': 'cron.yearly', '@annually': 'cron.yearly', '@monthly': 'cron.monthly', '@weekly': 'cron.weekly', '@daily': 'cron.daily', '@midnight': 'cron.daily', '@hourly': 'cron.hourly' };
  if (macro[s]) return t(macro[s]);
  if (s.startsWith('@every ')) return t('cron.every', { d: s.slice(7) });
  const p = s.split(/\s+/);
  if (p.length !== 5 && p.length !== 6) return '';
  const [sec, min, hour, dom, mon, dow] = p.length === 6 ? p : ['0', ...p];
  const parts = [];
  const num = (x) => /^\d+$/.test(x);
  const step = (x) => /^\*\/(\d+)$/.exec(x);
  if (num(min) && num(hour)) parts.push(t('cron.at', { t: `${hour.padStart(2, '0')}:${min.padStart(2, '0')}${sec !== '0' ? ':' + sec.padStart(2, '0') : ''}` }));
  else if (step(sec) && min === '*' && hour === '*') parts.push(t('cron.everysec', { n: step(sec)[1] }));
  else if (step(min) && hour === '*') parts.push(t('cron.everymin', { n: step(min)[1] }));
  else if (min === '*' && hour === '*') parts.push(t('cron.everyminute'));
  else if (num(min) && hour === '*') parts.push(t('cron.hourlyat', { m: min }));
  else if (num(min) && step(hour)) parts.push(t('cron.everyhour', { n: step(hour)[1], m: min }));
  else parts.push(t('cron.fields', { s: sec, m: min, h: hour }));
  if (dow !== '*' && dow !== '?') parts.push(t('cron.dow', { d: dow }));
  if (dom !== '*' && dom !== '?') parts.push(t('cron.dom', { d: dom }));
  if (mon !== '*') parts.push(t('cron.mon', { m: mon }));
  return parts.join(lang === 'zh-CN' ? '，' : ', ');
}

function input(name, kind, opts, ro, nodes) {
  const id = 'f-' + name;
  const common = { id, name, disabled: ro };
  switch (kind) {
    case 'select': return h('select', common, opts.map(([v, l]) => h('option', { value: v }, t(l))));
    case 'area': case 'json': return h('textarea', { ...common, rows: kind === 'json' ? 3 : 3, spellcheck: 'false' });
    case 'check': return h('input', { ...common, type: 'checkbox' });
    case 'int': return h('input', { ...common, type: 'number', min: 0, step: 1 });
    case 'zone': return h('input', { ...common, list: 'zones', placeholder: t('zone.default'), autocomplete: 'off' });
    case 'node': return h('select', common, h('option', { value: '' }, '—'),
      nodes.map((n) => h('option', { value: n.uuid }, `${n.hostname || n.uuid} (${n.ip || ''}${n.alive ? '' : ', ' + t('st.dead')})`)));
    default: return h('input', { ...common, autocomplete: 'off', spellcheck: 'false' });
  }
}

export async function jobEditPage(main, m, live) {
  const id = m[1] === 'new' ? 0 : +m[1];
  const cloneOf = +(query().get('clone') || 0);
  const ro = !can('operator');
  const [job, nodes] = await Promise.all([
    id || cloneOf ? api('/job/find?id=' + (id || cloneOf)) : Promise.resolve({ ...DEFAULTS }),
    api('/node/search', { page_size: 500 }).then((d) => d.list).catch(() => []),
  ]);
  if (!live()) return;
  if (cloneOf && !id) {
    delete job.id; delete job.updated; delete job.created;
    job.name = job.name + ' ' + t('copy.suffix');
  }
  const els = {};
  const fields = FIELDS.map(([name, kind, opts]) => {
    const el = els[name] = input(name, kind, opts, ro, nodes);
    el.dataset.kind = kind;
    return field(t('f.' + name), el, name, t('h.' + name) === 'h.' + name ? null : t('h.' + name));
  });
  for (const [name, el] of Object.entries(els)) {
    const v = job[name];
    if (v === undefined || v === null) continue;
    if (el.type === 'checkbox') el.checked = !!v;
    else if (el.dataset.kind === 'json') el.value = Object.keys(v).length ? JSON.stringify(v, null, 1) : '';
    else if (el.dataset.kind === 'ids') el.value = v.join(', ');
    else el.value = String(v);
  }

  // The job as the form has it; throws {field, message} on a local error.
  const collect = () => {
    const o = {};
    if (id) { o.id = id; if (job.updated) o.updated = job.updated; }
    for (const [name, kind] of FIELDS) {
      const el = els[name];
      const v = el.value.trim();
      if (kind === 'check') o[name] = el.checked;
      else if (kind === 'int' || (kind === 'select' && /^\d+$/.test(v))) { if (v !== '') o[name] = Number(v); }
      else if (kind === 'ids') o[name] = v ? v.split(/[\s,]+/).filter(Boolean).map(Number) : [];
      else if (kind === 'json') {
        try { o[name] = v ? JSON.parse(v) : {}; } catch (e) { throw Object.assign(new Error(name + ': ' + e.message), { field: name }); }
      } else o[name] = kind === 'area' ? el.value : v;
    }
    return o;
  };

  const preview = h('div.preview', { id: 'cron-preview', 'aria-live': 'polite' });
  let timer = 0, ask = 0;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const my = ++ask;
      const spec = els.spec.value.trim();
      if (!spec) return clear(preview);
      try {
        const d = await api('/cron/next', { spec, timezone: els.timezone.value.trim(), count: 10 });
        if (my !== ask) return;
        clear(preview, h('p.reading', describe(spec)),
          h('p.muted', t('cron.next10', { tz: d.timezone })),
          h('ol.fires', d.next.map((x) => h('li', h('time', { title: new Date(Date.parse(x)).toLocaleString(lang) + ' (' + t('local') + ')' }, x)))));
      } catch (e) {
        if (my === ask) clear(preview, h('p.error', e.message));
      }
    }, 250);
  };
  // Fields of the other job type are hidden (they keep their values).
  const byType = () => {
    const http = els.type.value === '2';
    for (const n of ['http_method', 'http_headers', 'http_body']) els[n].closest('.field').hidden = !http;
    for (const n of CMD_ONLY) els[n].closest('.field').hidden = http;
  };
  els.type.addEventListener('change', byType);
  byType();
  els.spec.addEventListener('input', refresh);
  els.timezone.addEventListener('input', refresh);

  const json = h('pre.json', { id: 'job-json' });
  const showJson = () => { try { json.textContent = JSON.stringify(collect(), null, 2); } catch (e) { json.textContent = e.message; } };
  const form = h('form.editor', {
    novalidate: true,
    oninput: showJson,
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const saved = await api('/job/add', collect());
        toast(t('saved'));
        go('jobs/' + saved.id, !!id);
      } catch (err) {
        showError(form, err);
      }
    },
  },
  h('p.form-err', { role: 'alert' }),
  h('div.grid', fields),
  h('datalist#zones', (Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : []).map((z) => h('option', { value: z }))),
  ro ? null : h('div.buttons', h('button.primary', { type: 'submit', id: 'save' }, t('save')), h('a.button', { href: 'jobs' }, t('cancel'))));
  // The preview sits under the spec field.
  els.spec.closest('.field').append(preview);
  const paste = h('textarea', { id: 'json-in', rows: 4, 'aria-label': t('json.paste'), placeholder: t('json.paste') });
  clear(main,
    h('div.head', h('h1', id ? t('job.edit', { id }) : t('jobs.new')),
      id ? h('div#job-links', h('a.button', { href: 'runs?job=' + id }, t('job.runs')), can('operator') ? h('a.button', { href: 'jobs/new?clone=' + id }, t('a.clone')) : null) : null),
    form,
    h('details.card', h('summary', t('json.title')), json,
      h('div.buttons',
        h('button', { type: 'button', onclick: () => navigator.clipboard.writeText(json.textContent).then(() => toast(t('copied'))) }, t('copy')),
        ro ? null : paste,
        ro ? null : h('button', {
          type: 'button', onclick: () => {
            try {
              const o = JSON.parse(paste.value);
              for (const [k, v] of Object.entries(o)) {
                const el = els[k]; if (!el) continue;
                if (el.type === 'checkbox') el.checked = !!v;
                else if (el.dataset.kind === 'json') el.value = JSON.stringify(v);
                else if (el.dataset.kind === 'ids') el.value = (v || []).join(', ');
                else el.value = String(v);
              }
              showJson(); refresh();
            } catch (e) { toast(e.message, true); }
          },
        }, t('json.apply')))));
  showJson();
  refresh();
  // A "Follow" link while the job has a running run.
  if (id) {
    api('/job/running', { job_id: +id }).then((rn) => {
      const links = main.querySelector('#job-links');
      if (rn.list.length && links && live()) links.prepend(h('a.button.follow', { href: 'runs/' + rn.list[0].run_id }, t('live.follow')), ' ');
    }).catch(() => {});
  }
}
