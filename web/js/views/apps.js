// Apps: the list, install, and the actions on each app.

import { api } from '../api.js';
import { h, link, replace } from '../dom.js';
import { state } from '../state.js';
import { act, confirmAction, field, stateBadge, table, taskLink } from '../ui.js';

// "KEY=value" lines into an object (and back).
export function parseEnv(text) {
  const env = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const i = line.indexOf('=');
    if (i <= 0) throw new Error(`"${line}" is not KEY=value`);
    env[line.slice(0, i).trim()] = line.slice(i + 1);
  }
  return env;
}
export function envText(env) {
  return Object.entries(env || {}).map(([k, v]) => `${k}=${v}`).join('\n');
}

export function appActions(a) {
  const id = a.id;
  const btn = (label, what, fn, cls) => {
    const b = h('button', { type: 'button', class: `small ${cls || ''}`, 'aria-label': `${label} ${id}` }, label);
    b.addEventListener('click', () => fn(b, what));
    return b;
  };
  return [
    btn('Restart', `Restart ${id}`, (b, w) => act(b, w, () => api('POST', `/apps/${id}/restart`))),
    btn('Back up', `Back up ${id}`, (b, w) => act(b, w, () => api('POST', `/apps/${id}/backup`))),
    btn('Uninstall', `Uninstall ${id}`, async (b, w) => {
      if (await confirmAction(`Uninstall ${id}? Its container and its data directory are deleted.`, `Uninstall ${id}`))
        act(b, w, () => api('POST', `/apps/${id}/uninstall`));
    }, 'danger'),
  ];
}

function installForm() {
  const id = h('input', { name: 'id', required: true, pattern: '[a-z0-9][a-z0-9\\-]{0,62}', spellcheck: 'false' });
  const image = h('input', { name: 'image', required: true, placeholder: 'localhost/wiki:1', spellcheck: 'false' });
  const env = h('textarea', { name: 'env', rows: 3, placeholder: 'TZ=UTC', spellcheck: 'false' });
  const dir = h('input', { name: 'dataDir', placeholder: 'default: under the appsdata root', spellcheck: 'false' });
  const submit = h('button', { type: 'submit' }, 'Install');
  const form = h('form', { class: 'stack', 'aria-label': 'Install an app' },
    field('App id', id), field('Image', image), field('Environment (KEY=value lines)', env),
    field('Data directory', dir), submit);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(submit, `Install ${id.value}`, async () => {
      const body = { id: id.value, image: image.value, env: parseEnv(env.value) };
      if (dir.value) body.dataDir = dir.value;
      return api('POST', '/apps', body);
    });
  });
  return form;
}

export default {
  title: () => 'Apps',
  mount(main) {
    const list = h('div');
    main.append(h('h1', {}, 'Apps'), list,
      h('section', { 'aria-labelledby': 'inst-h' }, h('h2', { id: 'inst-h' }, 'Install an app'), installForm()));
    const update = () => {
      const apps = [...state.apps.values()].sort((a, b) => a.id.localeCompare(b.id));
      replace(list, table('Apps', ['App', 'State', 'Image', 'Data directory', 'Last task', 'Actions'],
        apps.map((a) => h('tr', { 'data-app': a.id },
          h('td', {}, link(`#/apps/${encodeURIComponent(a.id)}`, a.id)),
          h('td', {}, stateBadge(a.installationState), ' ', a.runState, a.health ? ` · ${a.health}` : ''),
          h('td', {}, h('code', {}, a.image)), h('td', {}, h('code', {}, a.dataDir)),
          h('td', {}, a.taskId ? taskLink(a.taskId) : ''), h('td', { class: 'actions' }, appActions(a)))),
        'No apps installed.'));
    };
    update();
    return { update };
  },
};
