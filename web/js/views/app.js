// One app: state, env (as text), configure, update, restore, uninstall.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { bytes, time } from '../format.js';
import { state } from '../state.js';
import { act, confirmAction, field, kv, stateBadge, table, taskLink } from '../ui.js';
import { appActions, envText, parseEnv } from './apps.js';

export default {
  title: (p) => `App ${p[0]}`,
  mount(main, params) {
    const id = params[0];
    const info = h('div');
    const env = h('textarea', { name: 'env', rows: 5, spellcheck: 'false' });
    const saveEnv = h('button', { type: 'submit' }, 'Save environment');
    const envForm = h('form', { class: 'stack', 'aria-label': `Configure the environment of ${id}` },
      field('Environment (KEY=value lines)', env), saveEnv);
    envForm.addEventListener('submit', (e) => {
      e.preventDefault();
      act(saveEnv, `Configure ${id}`, () => api('POST', `/apps/${encodeURIComponent(id)}/configure`, { env: parseEnv(env.value) }));
    });
    const image = h('input', { name: 'image', required: true, spellcheck: 'false' });
    const upd = h('button', { type: 'submit' }, 'Update');
    const updForm = h('form', { class: 'inline', 'aria-label': `Update ${id} to another image` }, field('New image', image), upd);
    updForm.addEventListener('submit', (e) => {
      e.preventDefault();
      act(upd, `Update ${id}`, () => api('POST', `/apps/${encodeURIComponent(id)}/update`, { image: image.value }));
    });
    const backups = h('div');
    main.append(h('h1', {}, `App ${id}`), info,
      h('section', { 'aria-labelledby': 'env-h' }, h('h2', { id: 'env-h' }, 'Configure'), envForm),
      h('section', { 'aria-labelledby': 'upd-h' }, h('h2', { id: 'upd-h' }, 'Update'), updForm),
      h('section', { 'aria-labelledby': 'bk-h' }, h('h2', { id: 'bk-h' }, 'Backups of this app'), backups));
    let envShown = false;
    const update = () => {
      const a = state.apps.get(id);
      if (!a) return replace(info, h('p', {}, 'No such app (or not loaded yet).'));
      if (!envShown) { env.value = envText(a.env); image.value = a.image; envShown = true; }
      replace(info,
        kv([['State', [stateBadge(a.installationState), ' ', a.runState, ` · ${a.health}`]], ['Image', h('code', {}, a.image)],
          ['Data directory', h('code', {}, a.dataDir)], ['Container', a.containerId ? a.containerId.slice(0, 12) : '—'],
          ['Last task', a.taskId ? taskLink(a.taskId) : '—'], ['Updated', time(a.updatedAt)]]),
        table(`Environment of ${id}`, ['Variable', 'Value'],
          Object.entries(a.env || {}).map(([k, v]) => h('tr', {}, h('td', {}, h('code', {}, k)), h('td', { class: 'env-value' }, v))),
          'No environment variables.'),
        h('p', { class: 'actions' }, appActions(a)));
      const mine = state.backups.filter((b) => b.kind === 'app' && b.appId === id && b.state === 'ok');
      replace(backups, table(`Backups of ${id}`, ['Backup', 'Made', 'Size', ''],
        mine.map((b) => {
          const r = h('button', { type: 'button', class: 'small', 'aria-label': `Restore ${id} from backup ${b.id}` }, 'Restore');
          r.addEventListener('click', async () => {
            if (await confirmAction(`Restore ${id} from backup ${b.id}? Its data is replaced.`, 'Restore'))
              act(r, `Restore ${id} from backup ${b.id}`,
                () => api('POST', `/apps/${encodeURIComponent(id)}/restore`, { backupId: b.id }));
          });
          return h('tr', {}, h('td', {}, `#${b.id}`), h('td', {}, time(b.createdAt)), h('td', {}, bytes(b.size)), h('td', {}, r));
        }), 'No backup of this app yet.'));
    };
    update();
    return { update };
  },
};
