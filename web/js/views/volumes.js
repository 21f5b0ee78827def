// Volumes: host directories the sftp service shows.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { time } from '../format.js';
import { state } from '../state.js';
import { act, confirmAction, field, table } from '../ui.js';

export default {
  title: () => 'Volumes',
  mount(main) {
    const list = h('div');
    const id = h('input', { name: 'id', required: true, spellcheck: 'false' });
    const path = h('input', { name: 'hostPath', placeholder: 'default: under the volumes root', spellcheck: 'false' });
    const type = h('select', { name: 'mountType' }, h('option', { value: 'dir' }, 'dir'), h('option', { value: 'mountpoint' }, 'mountpoint'));
    const add = h('button', { type: 'submit' }, 'Add volume');
    const form = h('form', { class: 'inline', 'aria-label': 'Add a volume' },
      field('Volume id', id), field('Host path', path), field('Type', type), add);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const body = { id: id.value, mountType: type.value };
      if (path.value) body.hostPath = path.value;
      act(add, `Add volume ${id.value}`, () => api('POST', '/volumes', body));
    });
    main.append(h('h1', {}, 'Volumes'), list,
      h('section', { 'aria-labelledby': 'va-h' }, h('h2', { id: 'va-h' }, 'Add a volume'), form));
    const update = () => {
      replace(list, table('Volumes', ['Volume', 'Name', 'Host path', 'Type', 'Added', ''],
        state.volumes.map((v) => {
          const del = h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove volume ${v.id}` }, 'Remove');
          del.addEventListener('click', async () => {
            if (await confirmAction(`Remove volume ${v.id}? Only boxd's record goes; the data on the host stays.`, `Remove ${v.id}`))
              act(del, `Remove volume ${v.id}`, () => api('DELETE', `/volumes/${encodeURIComponent(v.id)}`));
          });
          return h('tr', {}, h('td', {}, v.id), h('td', {}, v.name), h('td', {}, h('code', {}, v.hostPath)),
            h('td', {}, v.mountType), h('td', {}, time(v.createdAt)), h('td', {}, del));
        }), 'No volumes.'));
    };
    update();
    return { update };
  },
};
