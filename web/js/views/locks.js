// Locks: who holds what, and the FIFO queue of waiters with the task that
// blocks each of them.

import { h, replace } from '../dom.js';
import { ago, duration } from '../format.js';
import { state } from '../state.js';
import { table, taskLink } from '../ui.js';

const at = (ms) => (typeof ms === 'number' && ms > 0 ? ago(new Date(ms).toISOString()) : '');

function owner(o) {
  const t = o.task ? state.tasks.get(o.task) : null;
  return o.task ? [taskLink(o.task), t ? ` (${t.type})` : ''] : `pid ${o.pid} on ${o.host}`;
}

// The holders a queued request waits for: those of its names held in a
// conflicting mode (exclusive against anything).
function blockers(doc, w) {
  const out = [];
  for (const want of w.locks || []) {
    for (const hd of doc.holders) {
      if (hd.name === want.name && (want.mode === 'exclusive' || hd.mode === 'exclusive') && hd.task !== w.task)
        out.push(hd);
    }
  }
  return out;
}

export default {
  title: () => 'Locks',
  mount(main) {
    const body = h('div');
    main.append(h('h1', {}, 'Locks'), body);
    const update = () => {
      const doc = state.locks;
      if (!doc) return replace(body, h('p', {}, 'Loading…'));
      const holders = [...doc.holders].sort((a, b) => a.name.localeCompare(b.name));
      replace(body,
        h('p', { class: 'muted' }, `Lock document version ${doc.version}.`),
        h('section', { 'aria-labelledby': 'lk-h' }, h('h2', { id: 'lk-h' }, 'Held'),
          table('Held locks', ['Lock', 'Mode', 'Owner', 'Held for', 'Host / pid'],
            holders.map((hd) => h('tr', { 'data-lock': hd.name },
              h('td', {}, h('code', {}, hd.name)), h('td', {}, hd.mode), h('td', {}, owner(hd)),
              h('td', {}, hd.at ? duration((Date.now() - hd.at) / 1000) : ''), h('td', {}, `${hd.host} / ${hd.pid}`))),
            'No lock is held.')),
        h('section', { 'aria-labelledby': 'lq-h' }, h('h2', { id: 'lq-h' }, 'Wait queue (first come, first served)'),
          table('Waiting requests, in order', ['#', 'Ticket', 'Waiter', 'Wants', 'Waiting since', 'Blocked by'],
            doc.queue.map((w, i) => {
              const bl = blockers(doc, w);
              return h('tr', { 'data-ticket': w.ticket },
                h('td', {}, String(i + 1)), h('td', {}, String(w.ticket)), h('td', {}, owner(w)),
                h('td', {}, (w.locks || []).map((l, j) => [j ? ', ' : '', h('code', {}, l.name), ` ${l.mode}`])),
                h('td', {}, at(w.at) || (state.tasks.get(w.task) ? ago(state.tasks.get(w.task).createdAt) : '')),
                h('td', { class: 'blocked-by' }, bl.length ? bl.map((b, j) => [j ? ', ' : '', owner(b)])
                  : i > 0 ? 'the waiters ahead' : ''));
            }),
            'Nobody waits.')));
    };
    update();
    return { update };
  },
};
