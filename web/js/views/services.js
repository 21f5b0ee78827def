// Services: health, mounts, spec hash; restart (the same container) or
// rebuild (a new one, only when the spec changed, unless forced).

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { time } from '../format.js';
import { state } from '../state.js';
import { act, kv, table } from '../ui.js';

function healthBadge(s) {
  return h('span', { class: `badge health-${s}`, 'data-health': s }, s);
}

export default {
  title: () => 'Services',
  mount(main) {
    const body = h('div');
    main.append(h('h1', {}, 'Services'), body);
    const update = () => {
      const services = [...state.services.values()];
      if (!services.length) return replace(body, h('p', {}, 'Loading…'));
      replace(body, services.map((s) => {
        const restart = h('button', { type: 'button', 'aria-label': `Restart service ${s.name}` }, 'Restart');
        restart.addEventListener('click', () => act(restart, `Restart ${s.name}`, () => api('POST', `/services/${s.name}/restart`)));
        const rebuild = h('button', { type: 'button', 'aria-label': `Rebuild service ${s.name}` }, 'Rebuild');
        rebuild.addEventListener('click', () => act(rebuild, `Rebuild ${s.name}`, () => api('POST', `/services/${s.name}/rebuild`)));
        const force = h('button', { type: 'button', class: 'danger', 'aria-label': `Force rebuild of service ${s.name}` }, 'Force rebuild');
        force.addEventListener('click', () => act(force, `Force rebuild ${s.name}`, () => api('POST', `/services/${s.name}/rebuild?force=1`)));
        const pending = s.upToDate === false
          ? h('p', { class: 'warning', role: 'note' }, 'Rebuild pending: the spec changed; boxd rebuilds the container once app work is quiet.')
          : null;
        return h('section', { class: 'service', 'data-service': s.name, 'data-started': s.startedAt || '', 'aria-labelledby': `svc-${s.name}` },
          h('h2', { id: `svc-${s.name}` }, s.name, ' ', healthBadge(s.health)),
          h('p', { class: 'muted' }, s.summary || ''),
          pending, s.error ? h('p', { class: 'error-text' }, s.error) : null,
          kv([['Container', `${s.containerName}${s.containerId ? ` (${s.containerId.slice(0, 12)})` : ''}`],
            ['State', s.state || '—'], ['Image', s.image || '—'], ['Started', time(s.startedAt) || '—'],
            ['Spec hash (container)', h('code', {}, s.specHash ? s.specHash.slice(0, 16) : '—')],
            ['Spec hash (now)', h('code', {}, s.currentSpecHash ? s.currentSpecHash.slice(0, 16) : '—')],
            ['Up to date', s.upToDate === undefined || s.upToDate === null ? '—' : s.upToDate ? 'yes' : 'no']]),
          h('p', { class: 'buttons' }, restart, ' ', rebuild, ' ', force,
            h('span', { class: 'muted' }, ' Restart keeps the container; rebuild makes a new one from the spec.')),
          table(`Mounts of ${s.name}`, ['Source', 'Target', 'Propagation', 'Writable'],
            (s.mounts || []).map((m) => h('tr', {}, h('td', {}, h('code', {}, m.source)), h('td', {}, h('code', {}, m.target || '')),
              h('td', {}, m.propagation || ''), h('td', {}, m.readOnly ? 'no' : 'yes'))), 'No mounts.'));
      }));
    };
    update();
    return { update };
  },
};
