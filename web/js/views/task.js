// One task: its fields and its live log (the logstream, as text).

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { time } from '../format.js';
import { putTask, state, changed } from '../state.js';
import { json, kv, progressBar, stateBadge, taskMessage } from '../ui.js';
import { stopButton } from './tasks.js';

export default {
  title: (p) => `Task ${p[0]}`,
  mount(main, params) {
    const id = Number(params[0]);
    const info = h('div');
    const log = h('pre', { class: 'log', 'aria-label': `Log of task ${id}`, tabindex: '0', 'data-log': id });
    const logState = h('p', { class: 'log-state', role: 'status' }, 'Connecting to the log…');
    main.append(h('h1', {}, `Task ${id}`), info,
      h('section', { 'aria-labelledby': 'log-h' }, h('h2', { id: 'log-h' }, 'Live log'), logState, log));
    if (!state.tasks.has(id)) api('GET', `/tasks/${id}`).then((t) => { putTask(t); changed(); }).catch((e) => replace(info, h('p', { class: 'error-text' }, e.message)));

    // The log stream ends with an `end` event; closing then keeps
    // EventSource from reconnecting and showing the log twice.
    const es = new EventSource(`/api/v1/tasks/${id}/logstream`);
    es.onmessage = (e) => {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(document.createTextNode(e.data + '\n'));
      if (atBottom) log.scrollTop = log.scrollHeight;
      replace(logState, 'Following the log.');
    };
    es.addEventListener('end', (e) => {
      es.close();
      let s = '';
      try { s = JSON.parse(e.data).state; } catch (x) { s = ''; }
      replace(logState, `The task ended (${s}); this is its whole log.`);
    });
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) replace(logState, 'The log stream is closed.'); };

    const update = () => {
      const t = state.tasks.get(id);
      if (!t) return;
      replace(info,
        h('p', {}, stateBadge(t.state), ' ', progressBar(t), ' ', stopButton(t)),
        h('p', { class: 'message' }, taskMessage(t)),
        kv([['Type', t.type], ['App', t.appId || '—'], ['Created', time(t.createdAt)],
          ['Started', time(t.startedAt) || '—'], ['Finished', time(t.finishedAt) || '—'], ['Worker pid', t.pid || '—']]),
        h('h2', {}, 'Arguments'), json(t.args),
        t.result ? [h('h2', {}, 'Result'), json(t.result)] : null);
    };
    update();
    return { update, unmount: () => es.close() };
  },
};
