/// <reference lib="dom" />
/**
 * Overview: live power per inverter, irradiance and temperatures, energy today, devices, alarms
 * and the cloud link. The figures come from /api/overview (the server knows which point is which);
 * each telemetry, alarm or cloud event re-reads it, at most a few times a second.
 */
import { api, ApiError } from '../api';
import { fmt, h, kw, pill, replace, time, ago } from '../dom';
import { throttle, type Page } from '../page';
import type { Overview } from '../types';

function tile(label: string, value: string, id: string, raw?: number | null): HTMLElement {
  return h('div', { class: 'tile', 'data-field': id, ...(raw !== undefined && raw !== null ? { 'data-value': raw } : {}) }, h('div', { class: 'tile-label' }, label), h('div', { class: 'tile-value' }, value));
}

function render(root: HTMLElement, o: Overview): void {
  const totalW = o.inverters.reduce((s, i) => s + (typeof i.acPowerW === 'number' ? i.acPowerW : 0), 0);
  replace(
    root,
    h(
      'section',
      { class: 'tiles' },
      tile('Site power', kw(totalW), 'sitePowerW', totalW),
      tile('Energy today', fmt(o.energyTodayKWh, 'kWh', 1), 'energyTodayKWh', o.energyTodayKWh),
      tile('Irradiance', fmt(o.weather.irradianceWm2, 'W/m²', 0), 'irradianceWm2', o.weather.irradianceWm2),
      tile('Ambient', fmt(o.weather.ambientC, '°C', 1), 'ambientC', o.weather.ambientC),
      tile('Module', fmt(o.weather.moduleC, '°C', 1), 'moduleC', o.weather.moduleC),
      tile('Devices online', `${o.devices.online} / ${o.devices.total}`, 'devices'),
      tile('Active alarms', `${o.alarms.active} (${o.alarms.unacknowledged} unack.)`, 'alarms', o.alarms.active),
      h(
        'div',
        { class: 'tile', 'data-field': 'cloud' },
        h('div', { class: 'tile-label' }, 'Cloud link'),
        h('div', { class: 'tile-value' }, pill(o.cloud.state)),
        o.cloud.backlogBytes !== undefined ? h('div', { class: 'tile-note' }, `backlog ${fmt(o.cloud.backlogBytes / 1024, 'KiB', 0)}`) : null,
      ),
    ),
    o.meter ? h('p', { class: 'note' }, `Meter: ${kw(o.meter.acPowerW)}${o.meter.energyTodayKWh !== undefined ? `, ${fmt(o.meter.energyTodayKWh, 'kWh', 1)} today` : ''}`) : null,
    h('h2', {}, 'Inverters'),
    h(
      'table',
      { class: 'grid', id: 'inverters' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Inverter'), h('th', { class: 'num' }, 'AC power'), h('th', { class: 'num' }, 'DC power'), h('th', {}, 'State'), h('th', {}, 'Updated'))),
      h(
        'tbody',
        {},
        o.inverters.map((i) =>
          h(
            'tr',
            { 'data-asset': i.assetId },
            h('th', { scope: 'row' }, i.assetId),
            h('td', { class: 'num', 'data-point': 'acPowerW', ...(typeof i.acPowerW === 'number' ? { 'data-value': i.acPowerW } : {}) }, kw(i.acPowerW)),
            h('td', { class: 'num', 'data-point': 'dcPowerW' }, kw(i.dcPowerW)),
            h('td', {}, i.state ? pill(i.state) : '–'),
            h('td', { title: time(i.updatedAt) }, ago(i.updatedAt)),
          ),
        ),
      ),
    ),
    h('p', { class: 'note' }, `Site ${o.siteId}, gateway time ${time(o.now)}`),
  );
}

export const overviewPage: Page = {
  id: 'overview',
  title: 'Overview',
  mount(root, { live }) {
    let closed = false;
    let first = true;
    const body = h('div', { class: 'overview', 'aria-busy': 'true' }, h('p', { class: 'note' }, 'Loading…'));
    replace(root, body);
    const load = async (): Promise<void> => {
      try {
        const o = await api.overview();
        if (closed) return;
        render(body, o);
        body.setAttribute('aria-busy', 'false');
        body.dataset.updated = String(Date.now());
        if (first) {
          first = false;
          // The benchmark's "first values rendered" mark (scripts/bench/hmi.ts).
          performance.mark('hmi:overview-rendered');
          body.dataset.ready = 'true';
        }
      } catch (err) {
        if (closed || (err instanceof ApiError && err.status === 401)) return;
        if (first) replace(body, h('p', { class: 'error' }, `Cannot read the overview: ${err instanceof Error ? err.message : String(err)}`));
      }
    };
    const reload = throttle(() => void load(), 500);
    void load();
    const offs = [live.on('telemetry', reload), live.on('alarm', reload), live.on('cloud', reload), live.on('device', reload), live.onReconnect(reload)];
    // Also every 10 s: energy and "updated … ago" move even when nothing is sent.
    const timer = setInterval(reload, 10_000);
    return () => {
      closed = true;
      reload.cancel();
      clearInterval(timer);
      for (const off of offs) off();
    };
  },
};
