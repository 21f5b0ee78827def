// main.js — log in (on TCP), then the shell: header, navigation, the view
// of the URL's #fragment, kept live by live.js.

import { h, replace } from './dom.js';
import { ApiError, login, logout, session, setCsrf, whenLoggedOut } from './api.js';
import { startLive, stopLive } from './live.js';
import { changed, onChange, state } from './state.js';
import { field, noticeEl } from './ui.js';
import overview from './views/overview.js';
import tasks from './views/tasks.js';
import taskDetail from './views/task.js';
import locks from './views/locks.js';
import apps from './views/apps.js';
import appDetail from './views/app.js';
import volumes from './views/volumes.js';
import services from './views/services.js';
import backups from './views/backups.js';

const root = document.getElementById('app');
const VIEWS = [
  ['overview', 'Overview', overview], ['tasks', 'Tasks', tasks], ['locks', 'Locks', locks],
  ['apps', 'Apps', apps], ['volumes', 'Volumes', volumes], ['services', 'Services', services],
  ['backups', 'Backups', backups],
];

function loginView(error) {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true,
    spellcheck: 'false', placeholder: 'boxd_…' });
  const err = h('p', { class: 'error-text', role: 'alert' }, error || '');
  const form = h('form', { class: 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'boxd'),
    h('p', {}, 'Log in with an API token (made with ', h('code', {}, 'boxd token create NAME'), ').'),
    field('API token', input),
    h('button', { type: 'submit' }, 'Log in'), err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value;
    input.value = ''; // the token is not kept anywhere in the page
    try {
      state.auth = await login(token);
      shell();
    } catch (x) {
      replace(err, x instanceof ApiError && x.status === 401 ? 'This token is not valid.' : x.message);
      input.focus();
    }
  });
  replace(root, h('main', { class: 'login-page' }, form));
  input.focus();
}

let current = null;
let shellUp = false;

function route() {
  const parts = (location.hash.replace(/^#\/?/, '') || 'overview').split('/').map(decodeURIComponent);
  let view = VIEWS.find(([k]) => k === parts[0]);
  let mod = view ? view[2] : overview;
  if (parts[0] === 'tasks' && parts[1]) mod = taskDetail;
  if (parts[0] === 'apps' && parts[1]) mod = appDetail;
  if (current && current.unmount) current.unmount();
  const main = document.getElementById('main');
  if (!main) return; // the login form is shown
  main.replaceChildren();
  current = mod.mount(main, parts.slice(1));
  // Which view is up (the browser tests wait for it after a hash change).
  main.dataset.route = parts.join('/');
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === (view ? view[0] : 'overview')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${mod.title(parts.slice(1))} — boxd`;
}

function header() {
  const liveEl = h('span', { class: 'live', role: 'status', id: 'live' });
  const hostEl = h('span', { class: 'host' });
  const update = () => {
    replace(liveEl, state.live === 'live' ? '● live' : state.live === 'polling' ? '◌ polling (stream lost)' : '… connecting');
    liveEl.className = `live ${state.live}`;
    liveEl.dataset.mode = state.live;
    replace(hostEl, state.status ? `${state.status.host} · ${state.status.version}` : '');
  };
  onChange(update);
  update();
  const out = state.auth && state.auth.auth === 'session'
    ? h('button', { type: 'button', class: 'logout', onclick: async () => { await logout(); location.reload(); } }, 'Log out')
    : null;
  return h('header', {},
    h('a', { class: 'brand', href: '#/overview' }, 'boxd'), hostEl, liveEl, out);
}

function shell() {
  const nav = h('nav', { 'aria-label': 'Views' },
    h('ul', {}, VIEWS.map(([k, label]) => h('li', {}, h('a', { href: `#/${k}`, 'data-view': k }, label)))));
  replace(root, header(), nav, noticeEl(), h('main', { id: 'main', tabindex: '-1' }));
  if (!shellUp) {
    shellUp = true;
    window.addEventListener('hashchange', route);
    onChange(() => { if (current && current.update) current.update(); });
  }
  route();
  startLive();
  changed();
}

async function boot() {
  whenLoggedOut(() => {
    if (!document.querySelector('form.login')) {
      stopLive();
      loginView('The login has expired: log in again.');
    }
  });
  try {
    state.auth = await session();
  } catch (e) {
    replace(root, h('p', { class: 'error-text', role: 'alert' }, `boxd does not answer: ${e.message}`));
    return;
  }
  if (state.auth.auth === 'none') return loginView();
  if (state.auth.csrfToken) setCsrf(state.auth.csrfToken);
  shell();
}

boot();
