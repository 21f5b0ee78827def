// Backups: the list, a full backup, restores.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { bytes, time } from '../format.js';
import { state } from '../state.js';
import { act, confirmAction, table, taskLink } from '../ui.js';

export default {
  title: () => 'Backups',
  mount(main) {
    const list = h('div');
    const create = h('button', { type: 'button' }, 'Create a full backup');
    create.addEventListener('click', () => act(create, 'Full backup', () => api('POST', '/backups/create')));
    main.append(h('h1', {}, 'Backups'), h('p', {}, create), list);
    const update = () => {
      replace(list, table('Backups, newest first', ['Backup', 'Kind', 'App', 'State', 'Size', 'Made', 'Task', ''],
        state.backups.map((b) => {
          let restore = null;
          if (b.kind === 'app' && b.state === 'ok' && state.apps.has(b.appId)) {
            restore = h('button', { type: 'button', class: 'small', 'aria-label': `Restore ${b.appId} from backup ${b.id}` }, 'Restore');
            restore.addEventListener('click', async () => {
              if (await confirmAction(`Restore ${b.appId} from backup ${b.id}? Its data is replaced.`, 'Restore'))
                act(restore, `Restore ${b.appId}`, () => api('POST', `/apps/${encodeURIComponent(b.appId)}/restore`, { backupId: b.id }));
            });
          }
          return h('tr', { 'data-backup': b.id }, h('td', {}, `#${b.id}`), h('td', {}, b.kind), h('td', {}, b.appId || ''),
            h('td', {}, b.state), h('td', {}, bytes(b.size)), h('td', {}, time(b.createdAt)),
            h('td', {}, b.taskId ? taskLink(b.taskId) : ''), h('td', {}, restore));
        }), 'No backups yet.'));
    };
    update();
    return { update };
  },
};
