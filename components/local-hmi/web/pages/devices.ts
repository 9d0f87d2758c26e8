/// <reference lib="dom" />
/**
 * Devices: communication state, when each was last heard, the SunSpec models found at discovery,
 * and the last value of every point (folded; a SunSpec inverter has dozens). Device events change
 * the state in place; telemetry events change the values.
 */
import { api, ApiError } from '../api';
import { ago, h, pill, replace, time } from '../dom';
import { throttle, type Page } from '../page';
import type { Device, PointValue } from '../types';

function valueText(v: PointValue): string {
  if (v.value === null || v.value === undefined) return '–';
  const s = typeof v.value === 'number' ? String(Math.round(v.value * 1000) / 1000) : String(v.value);
  return v.unit ? `${s} ${v.unit}` : s;
}

function card(d: Device, open: boolean, onToggle: (open: boolean) => void): HTMLElement {
  const values = Object.entries(d.values ?? {}).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  const details = h(
    'details',
    { class: 'values', ...(open ? { open: true } : {}) },
    h('summary', {}, `${values.length} values`),
    h('table', { class: 'grid compact' }, h('tbody', {}, values.map(([p, v]) => h('tr', { 'data-point': p }, h('th', { scope: 'row' }, p), h('td', { class: 'num' }, valueText(v)), h('td', { class: 'sub' }, time(v.ts)))))),
  );
  details.addEventListener('toggle', () => onToggle(details.open));
  return h(
    'article',
    { class: `device status-${d.status}`, 'data-asset': d.assetId },
    h('header', {}, h('h3', {}, d.assetId), pill(d.status)),
    h(
      'dl',
      {},
      h('dt', {}, 'Device'),
      h('dd', {}, [d.manufacturer, d.model].filter(Boolean).join(' ') || '–'),
      h('dt', {}, 'SunSpec models'),
      h('dd', { 'data-field': 'models' }, d.models && d.models.length ? d.models.join(', ') : '–'),
      h('dt', {}, 'Last seen'),
      h('dd', { title: time(d.lastSeen) }, ago(d.lastSeen)),
    ),
    values.length ? details : null,
  );
}

export const devicesPage: Page = {
  id: 'devices',
  title: 'Devices',
  mount(root, { live }) {
    let devices: Device[] = [];
    let closed = false;
    const opened = new Set<string>();
    const list = h('div', { class: 'devices' }, h('p', { class: 'note' }, 'Loading…'));
    replace(root, list);
    const draw = (): void => {
      replace(
        list,
        devices.length === 0
          ? h('p', { class: 'note empty' }, 'No devices configured.')
          : [...devices].sort((a, b) => a.assetId.localeCompare(b.assetId, 'en', { numeric: true })).map((d) => card(d, opened.has(d.assetId), (o) => (o ? opened.add(d.assetId) : opened.delete(d.assetId)))),
      );
    };
    const redraw = throttle(draw, 1000);
    const load = async (): Promise<void> => {
      try {
        const got = await api.devices();
        if (closed) return;
        devices = got;
        draw();
      } catch (err) {
        if (closed || (err instanceof ApiError && err.status === 401)) return;
        replace(list, h('p', { class: 'error' }, `Cannot read the devices: ${err instanceof Error ? err.message : String(err)}`));
      }
    };
    void load();
    const offs = [
      live.on('device', (d) => {
        const i = devices.findIndex((x) => x.assetId === d.assetId);
        if (i < 0) return void load();
        devices[i] = { ...devices[i]!, ...d, values: devices[i]!.values ?? {} };
        draw();
      }),
      live.on('telemetry', (t) => {
        const d = devices.find((x) => x.assetId === t.assetId);
        if (!d) return;
        d.values ??= {};
        for (const [p, v] of Object.entries(t.values)) d.values[p] = { ...d.values[p], value: v, ts: t.ts };
        d.lastSeen = t.ts;
        redraw();
      }),
      live.onReconnect(() => void load()),
    ];
    return () => {
      closed = true;
      redraw.cancel();
      for (const off of offs) off();
    };
  },
};
