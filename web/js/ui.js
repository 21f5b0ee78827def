// ui.js — pieces every view uses: fields with labels, progress bars, task
// messages that link to the task they wait for, a confirmation dialog, and
// the notice line where results and errors of actions are shown.

import { h, link, replace } from './dom.js';
import { state } from './state.js';

let uid = 0;

// A labelled input: <label for=…>Text</label><input id=…>.
export function field(label, input) {
  const id = input.id || `f${++uid}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

export function taskLink(id, text) {
  return link(`#/tasks/${id}`, text || `task ${id}`, { 'data-task-link': id });
}

export function stateBadge(s) {
  return h('span', { class: `badge st-${s}` }, s);
}

export function progressBar(t) {
  const pct = Math.max(0, Math.min(100, t.percent || 0));
  return h('span', { class: 'progress' },
    h('progress', { max: 100, value: pct, 'aria-label': `Progress of task ${t.id}` }),
    h('span', { class: 'pct' }, `${pct}%`));
}

// The task's message; while it waits, the task that blocks it is a link.
export function taskMessage(t) {
  const wf = t.waitingFor;
  const parts = [h('span', { class: 'msg' }, t.message || '')];
  if (t.state === 'waiting' && wf && wf.heldBy) {
    parts.push(' ', h('span', { class: 'blocker' }, '→ ', taskLink(wf.heldBy, `task ${wf.heldBy}`),
      state.tasks.get(wf.heldBy) ? ` (${state.tasks.get(wf.heldBy).type})` : ''));
  }
  if (t.error) parts.push(h('div', { class: 'error-text' }, `${t.error.code}: ${t.error.message}`));
  return parts;
}

// The notice line under the header: what the last action did.
const notice = h('div', { class: 'notice', role: 'status', 'aria-live': 'polite' });
export function noticeEl() { return notice; }
export function say(text, kind) {
  notice.className = `notice ${kind || ''}`;
  replace(notice, text);
}

// Run an API call from a button; say what happened.
export async function act(button, what, fn) {
  if (button) button.disabled = true;
  try {
    const r = await fn();
    if (r && r.taskId) say([`${what}: `, taskLink(r.taskId), ' started'], 'ok');
    else say(`${what}: done`, 'ok');
    return r;
  } catch (e) {
    say(`${what} failed: ${e.message}`, 'bad');
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

// Ask before something that cannot be undone; resolves true or false.
export function confirmAction(question, yes) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-q' });
    const done = (v) => { dlg.close(); dlg.remove(); resolve(v); };
    dlg.append(
      h('p', { id: 'confirm-q' }, question),
      h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'danger', onclick: () => done(true) }, yes),
        h('button', { type: 'button', onclick: () => done(false) }, 'Cancel')));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

export function table(caption, headers, rows, empty) {
  if (!rows.length) return h('p', { class: 'empty' }, empty || 'None.');
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows));
}

export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function json(v) {
  return h('pre', { class: 'json' }, v === null || v === undefined ? '—' : JSON.stringify(v, null, 2));
}
