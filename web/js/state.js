// state.js — what the page knows, kept current by live.js.
//
// Views read `state` and register with onChange(); every change is
// announced once per turn of the event loop, however many events came.

import { api } from './api.js';
import { ACTIVE } from './format.js';

export const state = {
  auth: null,          // {auth: "socket"|"token"|"session"|"none", ...}
  status: null,        // GET /status, and when it was fetched
  statusAt: 0,
  tasks: new Map(),    // id → task
  locks: null,         // GET /locks
  apps: new Map(),     // id → app
  volumes: [],
  services: new Map(), // name → status
  backups: [],
  live: 'connecting',  // connecting | live | polling
  loaded: false,
  lastEventAt: 0,
};

const listeners = new Set();
let scheduled = false;

export function onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }

export function changed() {
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    scheduled = false;
    for (const fn of [...listeners]) fn();
  }, 0);
}

const KEEP_FINISHED = 200;

export function putTask(t) {
  state.tasks.set(t.id, t);
  if (state.tasks.size > KEEP_FINISHED + 50) {
    const done = [...state.tasks.values()].filter((x) => !ACTIVE.has(x.state)).sort((a, b) => a.id - b.id);
    for (const x of done.slice(0, done.length - KEEP_FINISHED)) state.tasks.delete(x.id);
  }
}

// Everything at once (first load, a resync, and each round of polling).
// Events that arrive meanwhile are applied again afterwards, so that an
// answer older than an event never has the last word.
let loading = null;
let replay = [];

export function recordForReplay(fn) { if (loading) replay.push(fn); }

export function loadAll() {
  if (loading) return loading;
  replay = [];
  loading = (async () => {
    const ok = (p) => p.catch((e) => ({ error: e }));
    const [status, recent, active, locks, apps, volumes, services, backups] = await Promise.all([
      ok(api('GET', '/status')), ok(api('GET', '/tasks?per_page=100')),
      ok(api('GET', '/tasks?state=active&per_page=1000')), ok(api('GET', '/locks')),
      ok(api('GET', '/apps')), ok(api('GET', '/volumes')), ok(api('GET', '/services')),
      ok(api('GET', '/backups')),
    ]);
    if (!status.error) { state.status = status; state.statusAt = Date.now(); }
    if (!recent.error && !active.error) {
      // Tasks no longer in either answer are old and finished: keep them.
      for (const t of [...recent.tasks, ...active.tasks]) putTask(t);
    }
    if (!locks.error) state.locks = locks;
    if (!apps.error) state.apps = new Map(apps.apps.map((a) => [a.id, a]));
    if (!volumes.error) state.volumes = volumes.volumes;
    if (!services.error) state.services = new Map(services.services.map((s) => [s.name, s]));
    if (!backups.error) state.backups = backups.backups;
    state.loaded = true;
    const again = replay;
    replay = [];
    loading = null;
    for (const fn of again) fn();
    changed();
  })();
  return loading;
}

export async function refreshStatus() {
  try {
    state.status = await api('GET', '/status');
    state.statusAt = Date.now();
    changed();
  } catch (e) { /* shown as stale by the overview */ }
}
