// A run's page: its details, and its output — stored for a finished run,
// followed live (GET /job/output?follow=1) for a running one.
import { h, clear, t, api, when, duration, badge } from '../lib.js';
import { follow } from '../sse.js';

// The page keeps at most this many characters of live output: a run that
// prints for days must not grow the tab without bound (the start is dropped).
const KEEP = 2 << 20;

function kv(pairs) {
  return h('dl.kv', pairs.map(([k, v]) => [h('dt', t(k)), h('dd', v)]));
}

function details(r) {
  return h('section#run-details.card', kv([
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
  ]));
}

function attempts(r) {
  return r.attempt_list && r.attempt_list.length ? h('section#run-attempts.card', h('h2', t('run.attempts')),
    r.attempt_list.map((a) => h('details', { open: a.attempt === r.attempt_list.length },
      h('summary', `#${a.attempt} `, badge(a.status), ' ', when(a.start_time), ` · ${duration(a.end_time - a.start_time)} · ${t('f.exit')} ${a.exit_code}`),
      h('pre.output', a.output || '')))) : h('div#run-attempts');
}

// The live output: appends text nodes (never HTML); scrolls along only while
// the reader is at the bottom, so scrolling up to read holds the view still.
function liveOutput(r, main, live) {
  const pre = h('pre.output.live', { id: 'run-output', tabindex: '0', 'aria-live': 'off' });
  const status = h('span#run-live-status');
  const pause = h('button', { type: 'button', id: 'run-pause' }, t('live.pause'));
  const bar = h('div.livebar', { role: 'status' }, status, pause);
  let kept = 0, trimmed = false;
  const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
  const put = (node, len) => {
    const stick = atBottom();
    pre.append(node);
    kept += len;
    while (kept > KEEP && pre.firstChild) {
      const f = pre.firstChild;
      if (f.classList && f.classList.contains('trimmed')) { pre.firstChild.remove(); continue; }
      kept -= f.textContent.length;
      f.remove();
      trimmed = true;
    }
    if (trimmed && !(pre.firstChild && pre.firstChild.classList && pre.firstChild.classList.contains('trimmed')))
      pre.prepend(h('span.trimmed.muted', t('live.trimmed') + '\n'));
    if (stick) pre.scrollTop = pre.scrollHeight;
  };
  const show = (s, e) => {
    main.dataset.live = s;
    if (s === 'live') clear(status, h('span.dot'), t('live.following'));
    else if (s === 'paused') clear(status, t('live.paused'));
    else if (s === 'retry') clear(status, t('live.retry'));
    else if (s === 'error') clear(status, h('span.error', e ? e.message : ''));
  };
  const f = follow(r.id, {
    state: (s, e) => {
      if (!live()) return;
      if (s === 'done') { pause.remove(); return; }
      show(s, e);
      if (s === 'error') pause.remove();
    },
    on: (type, d) => {
      if (!live()) { f.stop(); return; }
      if (type === 'output' && typeof d === 'string') put(document.createTextNode(d), d.length);
      else if (type === 'cut') {
        const n = d && Number.isFinite(d.missed) ? d.missed : 0;
        put(h('span.cut', '\n' + t('live.cut', { n }) + '\n'), 0);
      } else if (type === 'end') {
        main.dataset.live = 'end';
        clear(status, t('live.ended'), ' ', badge(d && d.status ? d.status : 'success'), ' ',
          d && Number.isFinite(d.exit_code) ? `${t('f.exit')} ${d.exit_code}` : '');
        refresh(r.id, main, live);
      } else if (type === 'lost') {
        main.dataset.live = 'lost';
        clear(status, badge('lost'), ' ', h('span.error', t('live.lost', { node: (d && d.node_uuid) || r.node_uuid })));
        refresh(r.id, main, live);
      }
    },
  });
  pause.addEventListener('click', () => {
    if (main.dataset.live === 'paused') { f.resume(); pause.textContent = t('live.pause'); }
    else { f.pause(); pause.textContent = t('live.resume'); }
  });
  // Leaving the page closes the stream (a quiet run sends nothing for 15 s).
  const tick = setInterval(() => { if (!live()) { f.stop(); clearInterval(tick); } }, 1000);
  return h('section.card', h('h2', t('f.output')), bar, pre);
}

// After the end: the stored details (end time, exit code, attempts); the
// output already shown stays as it is.
async function refresh(id, main, live) {
  try {
    const r = await api('/job/run?id=' + id);
    if (!live()) return;
    main.querySelector('#run-details').replaceWith(details(r));
    main.querySelector('#run-attempts').replaceWith(attempts(r));
  } catch { /* the live status already says how it ended */ }
}

export async function runPage(main, m, live) {
  const r = await api('/job/run?id=' + m[1]);
  if (!live()) return;
  const running = r.status === 'running';
  clear(main,
    h('div.head', h('h1', t('run.title', { id: r.id })), h('a.button', { href: 'runs?job=' + r.job_id }, t('job.runs'))),
    details(r),
    running ? liveOutput(r, main, live)
      : h('section.card', h('h2', t('f.output')), h('pre.output', { id: 'run-output', tabindex: '0' }, r.output || '')),
    attempts(r));
}
