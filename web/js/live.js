// live.js — the event stream (GET /api/v1/events), and polling when it
// is lost.
//
// EventSource reconnects by itself (the server asks for 1 s) and sends
// Last-Event-ID, so a short drop loses nothing. While the stream is down —
// an error, or no event and no heartbeat for twice the heartbeat time —
// the page polls every POLL_MS; the next `hello` stops the polling.

import { changed, loadAll, putTask, recordForReplay, state } from './state.js';

const POLL_MS = 2000;
let es = null;
let lastId = '';
let heartbeatMs = 15000;
let pollTimer = null;
let reopenTimer = null;

function apply(fn) {
  fn();
  recordForReplay(fn);
  state.lastEventAt = Date.now();
  changed();
}

const handlers = {
  task: (t) => apply(() => putTask(t)),
  lock: (doc) => apply(() => { state.locks = doc; }),
  app: (a) => apply(() => { if (a.deleted) state.apps.delete(a.id); else state.apps.set(a.id, a); }),
  volumes: (v) => apply(() => { state.volumes = v.volumes; }),
  service: (s) => apply(() => { state.services.set(s.name, s); }),
  backups: (b) => apply(() => { state.backups = b.backups; }),
};

function setLive(mode) {
  if (state.live !== mode) { state.live = mode; changed(); }
}

function startPolling() {
  setLive('polling');
  if (pollTimer) return;
  loadAll();
  pollTimer = setInterval(loadAll, POLL_MS);
}

function stopPolling() {
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
}

function open() {
  if (es) es.close();
  const url = '/api/v1/events' + (lastId ? '?lastEventId=' + encodeURIComponent(lastId) : '');
  es = new EventSource(url);
  es.addEventListener('hello', (e) => {
    const hello = JSON.parse(e.data);
    heartbeatMs = hello.heartbeatMs || heartbeatMs;
    lastId = e.lastEventId || lastId;
    state.lastEventAt = Date.now();
    stopPolling();
    setLive('live');
    if (!hello.resumed || !state.loaded) loadAll();
  });
  es.addEventListener('resync', (e) => { lastId = e.lastEventId || lastId; loadAll(); });
  es.addEventListener('heartbeat', () => { state.lastEventAt = Date.now(); });
  for (const [name, fn] of Object.entries(handlers)) {
    es.addEventListener(name, (e) => {
      lastId = e.lastEventId || lastId;
      fn(JSON.parse(e.data));
    });
  }
  es.onerror = () => {
    startPolling();
    if (es.readyState === EventSource.CLOSED) reopenLater();
  };
}

function reopenLater() {
  if (reopenTimer) return;
  reopenTimer = setTimeout(() => { reopenTimer = null; open(); }, POLL_MS);
}

let watchdog = null;

export function startLive() {
  stopLive();
  open();
  // A stream that went silent (a proxy that holds it, a half-open TCP
  // connection) is as good as lost.
  watchdog = setInterval(() => {
    if (state.live === 'live' && Date.now() - state.lastEventAt > 2 * heartbeatMs + 5000) {
      es.close();
      startPolling();
      reopenLater();
    }
  }, 1000);
}

// Logged out: no stream, no polling (they would only be refused).
export function stopLive() {
  if (es) es.close();
  es = null;
  stopPolling();
  clearInterval(watchdog);
  clearTimeout(reopenTimer);
  reopenTimer = null;
  state.live = 'connecting';
}
