// Overview: what boxd is, and what it does now.

import { h, replace } from '../dom.js';
import { duration, ACTIVE } from '../format.js';
import { refreshStatus, state } from '../state.js';
import { kv, progressBar, stateBadge, table, taskLink, taskMessage } from '../ui.js';

// The engine, its version and API version; or why they are not known.
function engineText(e) {
  if (!e.reachable) return `unreachable${e.error ? `: ${e.error}` : ''}`;
  if (!e.version) return `reachable; version not known${e.error ? `: ${e.error}` : ''}`;
  return `${e.product || 'engine'} ${e.version} (API ${e.apiVersion})`;
}

export default {
  title: () => 'Overview',
  mount(main) {
    const body = h('div');
    main.append(h('h1', {}, 'Overview'), body);
    refreshStatus();
    const timer = setInterval(refreshStatus, 10000);
    const update = () => {
      const st = state.status;
      if (!st) return replace(body, h('p', {}, 'Loading…'));
      const e = st.engine || {};
      const up = st.uptimeSeconds + Math.floor((Date.now() - state.statusAt) / 1000);
      const tasks = [...state.tasks.values()];
      const count = (s) => tasks.filter((t) => t.state === s).length;
      const locks = state.locks || { holders: [], queue: [] };
      const running = tasks.filter((t) => ACTIVE.has(t.state)).sort((a, b) => a.id - b.id);
      replace(body,
        h('section', { class: 'cards', 'aria-label': 'Summary' },
          card('Running', count('running')), card('Waiting', count('waiting')), card('Queued', count('queued')),
          card('Apps', state.apps.size), card('Locks held', locks.holders.length),
          card('Lock waiters', locks.queue.length)),
        h('section', { 'aria-labelledby': 'ov-sys' }, h('h2', { id: 'ov-sys' }, 'System'),
          kv([
            ['Version', `${st.version}${st.buildVersion !== st.version ? ` (built as ${st.buildVersion})` : ''}`],
            ['Host', st.host],
            ['Store', st.store.backend],
            ['Engine', engineText(e)],
            ['Engine socket', e.socket || '—'],
            ['Uptime', duration(up)],
          ]),
          (st.warnings || []).map((w) => h('p', { class: 'warning', role: 'note' }, w))),
        h('section', { 'aria-labelledby': 'ov-now' }, h('h2', { id: 'ov-now' }, 'Running now'),
          table('Active tasks', ['Task', 'Type', 'App', 'State', 'Progress', 'Message'],
            running.map((t) => h('tr', { 'data-task-id': t.id },
              h('td', {}, taskLink(t.id, `#${t.id}`)), h('td', {}, t.type), h('td', {}, t.appId || ''),
              h('td', {}, stateBadge(t.state)), h('td', {}, progressBar(t)), h('td', {}, taskMessage(t)))),
            'Nothing runs now.')));
    };
    update();
    return { update, unmount: () => clearInterval(timer) };
  },
};

function card(label, n) {
  return h('div', { class: 'card' }, h('span', { class: 'n' }, String(n)), h('span', { class: 'l' }, label));
}
