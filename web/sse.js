// Follows GET /job/output?follow=1. EventSource cannot send the bearer
// token (it lives in sessionStorage, not a cookie), so this reads the
// server-sent events with fetch() and parses the few fields the route sends
// (event, id, data, comments). Each event's id is the byte offset after it:
// a dropped connection resumes from there, nothing repeated or missed.
import { apiURL, session, ApiError } from './lib.js';

// One connection; calls on(type, data) per event. Resolves true after the
// final event (end / lost), false if the stream closed before one.
async function connect(runId, st, on) {
  st.ac = new AbortController();
  const r = await fetch(apiURL(`/job/output?run_id=${encodeURIComponent(runId)}&offset=${st.offset}&follow=1`), {
    headers: { Authorization: 'Bearer ' + (session.token || ''), Accept: 'text/event-stream' },
    signal: st.ac.signal, cache: 'no-store',
  });
  if (!r.ok) {
    let j = null;
    try { j = await r.json(); } catch { /* not JSON: the status says enough */ }
    throw new ApiError(j ? j.msg : 'HTTP ' + r.status, j ? j.code : -1, j && j.field, r.status);
  }
  const rd = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '', type = '', data = [], id = null;
  for (;;) {
    const { value, done } = await rd.read();
    if (done) return false;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') { // a blank line ends the event
        if (data.length) {
          if (id !== null && /^\d+$/.test(id)) st.offset = +id;
          let v;
          try { v = JSON.parse(data.join('\n')); } catch { v = null; }
          const final = type === 'end' || type === 'lost';
          on(type || 'message', v);
          if (final) { rd.cancel().catch(() => {}); return true; }
        }
        type = ''; data = []; id = null;
        continue;
      }
      if (line[0] === ':') continue; // keep-alive comment
      const c = line.indexOf(':');
      const k = c < 0 ? line : line.slice(0, c);
      const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (k === 'event') type = v;
      else if (k === 'data') data.push(v);
      else if (k === 'id') id = v;
    }
    // A line longer than any chunk the server sends means a broken stream.
    if (buf.length > 1 << 20) throw new Error('event too long');
  }
}

// follow(runId, {on(type, data), state(s)}) -> {pause(), resume(), stop()}.
// state(s) gets 'live' | 'paused' | 'retry' | 'done' | 'error' (with the
// error). Pausing closes the connection; resuming reconnects from the last
// offset. Reconnects after a drop with a growing delay (1 s .. 10 s).
export function follow(runId, cb) {
  const st = { offset: 0, ac: null, paused: false, stopped: false, gen: 0 };
  const set = (s, e) => cb.state && cb.state(s, e);
  async function loop(gen) {
    let delay = 1000;
    while (!st.stopped && !st.paused && gen === st.gen) {
      set('live');
      try {
        const before = st.offset;
        if (await connect(runId, st, (ty, d) => { if (gen === st.gen) cb.on(ty, d); })) {
          st.stopped = true;
          set('done');
          return;
        }
        if (st.offset !== before) delay = 1000;
      } catch (e) {
        if (gen !== st.gen || st.stopped || st.paused) return; // aborted by us
        if (e instanceof ApiError && e.status >= 400 && e.status < 500) {
          st.stopped = true;
          set('error', e);
          return;
        }
      }
      if (gen !== st.gen || st.stopped || st.paused) return;
      set('retry');
      await new Promise((ok) => setTimeout(ok, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }
  const halt = () => { st.gen++; if (st.ac) st.ac.abort(); };
  loop(st.gen);
  return {
    pause() { if (st.stopped || st.paused) return; st.paused = true; halt(); set('paused'); },
    resume() { if (st.stopped || !st.paused) return; st.paused = false; halt(); loop(st.gen); },
    stop() { st.stopped = true; halt(); },
    get offset() { return st.offset; },
  };
}
