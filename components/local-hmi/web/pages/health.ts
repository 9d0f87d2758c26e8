/// <reference lib="dom" />
/**
 * Health: each component's state (from the Health component's reports), the gateway's disk, the
 * Uplink outbox backlog, the ML model versions, and the HMI itself. Health events re-read it.
 */
import { api, ApiError } from '../api';
import { bytes, duration, h, pill, replace, time } from '../dom';
import { throttle, type Page } from '../page';
import type { Health } from '../types';

function outboxRows(o: Record<string, unknown>): HTMLElement[] {
  return Object.entries(o).map(([k, v]) => {
    const text = typeof v === 'number' && /bytes/i.test(k) ? bytes(v) : typeof v === 'number' && /(at|time|since)$/i.test(k) && v > 1e12 ? time(v) : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return h('tr', { 'data-field': k }, h('th', { scope: 'row' }, k), h('td', {}, text));
  });
}

function render(root: HTMLElement, x: Health): void {
  const used = x.disk ? x.disk.totalBytes - x.disk.freeBytes : undefined;
  replace(
    root,
    h('h2', {}, 'Components'),
    h(
      'table',
      { class: 'grid', id: 'components' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Component'), h('th', {}, 'State'), h('th', {}, 'Version'), h('th', {}, 'Detail'))),
      h('tbody', {}, x.components.map((c) => h('tr', { 'data-component': c.name }, h('th', { scope: 'row' }, c.name), h('td', {}, pill(c.state)), h('td', {}, c.version ?? '–'), h('td', { class: 'sub' }, c.detail ?? '')))),
    ),
    h(
      'section',
      { class: 'tiles' },
      x.disk
        ? h(
            'div',
            { class: 'tile', 'data-field': 'disk' },
            h('div', { class: 'tile-label' }, `Disk ${x.disk.path}`),
            h('div', { class: 'tile-value' }, `${bytes(x.disk.freeBytes)} free`),
            h('meter', { min: 0, max: x.disk.totalBytes, value: used ?? 0, high: x.disk.totalBytes * 0.85, optimum: 0 }),
            h('div', { class: 'tile-note' }, `of ${bytes(x.disk.totalBytes)}`),
          )
        : null,
      x.hmi ? h('div', { class: 'tile', 'data-field': 'hmi' }, h('div', { class: 'tile-label' }, 'LocalHmi'), h('div', { class: 'tile-value' }, x.hmi.version), h('div', { class: 'tile-note' }, `up ${duration(x.hmi.uptimeS)}`)) : null,
    ),
    x.outbox ? [h('h2', {}, 'Outbox (cloud backlog)'), h('table', { class: 'grid compact', id: 'outbox' }, h('tbody', {}, outboxRows(x.outbox)))] : null,
    x.models && x.models.length
      ? [h('h2', {}, 'Models'), h('table', { class: 'grid compact', id: 'models' }, h('tbody', {}, x.models.map((m) => h('tr', {}, h('th', { scope: 'row' }, m.name), h('td', {}, m.version)))))]
      : null,
  );
}

export const healthPage: Page = {
  id: 'health',
  title: 'Health',
  mount(root, { live }) {
    let closed = false;
    const body = h('div', { class: 'health' }, h('p', { class: 'note' }, 'Loading…'));
    replace(root, body);
    const load = async (): Promise<void> => {
      try {
        const x = await api.health();
        if (!closed) render(body, x);
      } catch (err) {
        if (closed || (err instanceof ApiError && err.status === 401)) return;
        replace(body, h('p', { class: 'error' }, `Cannot read the health: ${err instanceof Error ? err.message : String(err)}`));
      }
    };
    const reload = throttle(() => void load(), 1000);
    void load();
    const offs = [live.on('health', reload), live.on('cloud', reload), live.onReconnect(reload)];
    const timer = setInterval(reload, 15_000);
    return () => {
      closed = true;
      reload.cancel();
      clearInterval(timer);
      for (const off of offs) off();
    };
  },
};
