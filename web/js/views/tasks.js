// Tasks: the live list, a hold task form, stop buttons.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { ago, ACTIVE } from '../format.js';
import { state } from '../state.js';
import { act, field, progressBar, stateBadge, table, taskLink, taskMessage } from '../ui.js';

export function stopButton(t) {
  if (!ACTIVE.has(t.state)) return null;
  const b = h('button', { type: 'button', class: 'danger small', 'aria-label': `Stop task ${t.id}` }, 'Stop');
  b.addEventListener('click', () => act(b, `Stop task ${t.id}`, () => api('POST', `/tasks/${t.id}/stop`)));
  return b;
}

function holdForm() {
  const name = h('input', { name: 'lock', required: true, value: 'app:demo', spellcheck: 'false' });
  const mode = h('select', { name: 'mode' }, h('option', { value: 'exclusive' }, 'exclusive'),
    h('option', { value: 'shared' }, 'shared'));
  const secs = h('input', { name: 'seconds', type: 'number', min: 0, max: 604800, value: 60, required: true });
  const submit = h('button', { type: 'submit' }, 'Hold');
  const form = h('form', { class: 'inline', 'aria-label': 'Hold a lock' },
    field('Lock', name), field('Mode', mode), field('Seconds', secs), submit);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(submit, `Hold ${name.value}`, () => api('POST', '/tasks', {
      type: 'hold', args: { locks: [{ name: name.value, mode: mode.value }], seconds: Number(secs.value) },
    }));
  });
  return form;
}

export default {
  title: () => 'Tasks',
  mount(main) {
    const filter = h('select', { name: 'filter' },
      h('option', { value: 'all' }, 'all recent'), h('option', { value: 'active' }, 'active only'));
    const list = h('div');
    filter.addEventListener('change', () => update());
    main.append(h('h1', {}, 'Tasks'),
      h('section', { 'aria-labelledby': 'hold-h' }, h('h2', { id: 'hold-h' }, 'Hold locks (maintenance window)'),
        holdForm()),
      h('section', { 'aria-labelledby': 'list-h' }, h('h2', { id: 'list-h' }, 'Tasks'), field('Show', filter), list));
    const update = () => {
      let tasks = [...state.tasks.values()].sort((a, b) => b.id - a.id);
      if (filter.value === 'active') tasks = tasks.filter((t) => ACTIVE.has(t.state));
      replace(list, table('Tasks, newest first', ['Task', 'Type', 'App', 'State', 'Progress', 'Message', 'Created', ''],
        tasks.slice(0, 100).map((t) => h('tr', { 'data-task-id': t.id, 'data-state': t.state },
          h('td', {}, taskLink(t.id, `#${t.id}`)), h('td', {}, t.type), h('td', {}, t.appId || ''),
          h('td', { class: 'state' }, stateBadge(t.state)), h('td', {}, progressBar(t)),
          h('td', { class: 'message' }, taskMessage(t)), h('td', {}, ago(t.createdAt)),
          h('td', {}, stopButton(t), ' ', h('a', { href: `#/tasks/${t.id}`, 'aria-label': `Log of task ${t.id}` }, 'Log')))),
        'No tasks yet.'));
    };
    update();
    return { update };
  },
};
