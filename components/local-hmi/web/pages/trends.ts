/// <reference lib="dom" />
/**
 * Trends: any stored series, the last hour raw or 24 h / 7 d from the 1-minute rollups (with their
 * min/max band), drawn with uPlot on a canvas. The last hour also grows with live telemetry.
 */
import uPlot from 'uplot';
import { api, ApiError } from '../api';
import { h, replace } from '../dom';
import type { Page } from '../page';
import type { Series, Trend, TrendRange } from '../types';
import { hmiStats } from '../stats';

const RANGES: { id: TrendRange; label: string }[] = [
  { id: '1h', label: 'Last hour' },
  { id: '24h', label: '24 hours' },
  { id: '7d', label: '7 days' },
];

const key = (s: { assetId: string; point: string }): string => `${s.assetId}|${s.point}`;

/** 24-hour clock, day first (uPlot's default axis says 12pm, 11/28). */
const two = (n: number): string => String(n).padStart(2, '0');
function axisTime(sec: number, spanS: number): string {
  const d = new Date(sec * 1000);
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  if (spanS <= 600) return `${hm}:${two(d.getSeconds())}`;
  // Days: the date above the time (uPlot draws a label's lines one under the other).
  return spanS > 2 * 86_400 ? `${two(d.getDate())}/${two(d.getMonth() + 1)}\n${hm}` : hm;
}

function chartOptions(t: Trend, width: number, onDrawn: () => void): uPlot.Options {
  const unit = t.unit ? ` (${t.unit})` : '';
  const series: uPlot.Series[] = [{ value: (_u, v) => (v === null || v === undefined ? '–' : new Date(v * 1000).toLocaleString('en-GB')) }, { label: `${t.assetId} ${t.point}${unit}`, stroke: '#1565c0', width: 2, spanGaps: false, points: { show: false } }];
  if (t.min && t.max) {
    series.push({ label: 'min', stroke: '#90caf9', width: 1, points: { show: false } }, { label: 'max', stroke: '#90caf9', width: 1, points: { show: false } });
  }
  return {
    width,
    height: Math.max(260, Math.min(480, Math.round(width * 0.5))),
    series,
    ...(t.min && t.max ? { bands: [{ series: [3, 2], fill: 'rgba(144, 202, 249, 0.25)' }] } : {}),
    axes: [{ values: (u, splits) => splits.map((v) => axisTime(v, (u.scales['x']?.max ?? 0) - (u.scales['x']?.min ?? 0))), space: 70, size: 56 }, { label: t.unit ?? '', size: 70 }],
    scales: { x: { time: true } },
    cursor: { drag: { x: true, y: false } },
    hooks: { draw: [() => onDrawn()] },
  };
}

function chartData(t: Trend): uPlot.AlignedData {
  const xs = t.t.map((ms) => ms / 1000);
  const cols: (number | null)[][] = [t.v];
  if (t.min && t.max) cols.push(t.min, t.max);
  return [xs, ...cols] as uPlot.AlignedData;
}

export const trendsPage: Page = {
  id: 'trends',
  title: 'Trends',
  mount(root, { live }) {
    let closed = false;
    let chart: uPlot | undefined;
    let current: Trend | undefined;
    let series: Series[] = [];
    const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
    let range: TrendRange = RANGES.find((r) => r.id === params.get('range'))?.id ?? '1h';
    let selected = params.get('asset') && params.get('point') ? `${params.get('asset')}|${params.get('point')}` : '';

    const select = h('select', { id: 'series', 'aria-label': 'Series' });
    const rangeBar = h('div', { class: 'tabs', role: 'tablist' });
    const status = h('p', { class: 'note', id: 'trend-status' });
    const holder = h('div', { class: 'chart', id: 'chart' });
    replace(root, h('div', { class: 'toolbar' }, h('label', { class: 'field inline' }, h('span', {}, 'Series'), select), rangeBar), holder, status);

    const drawRanges = (): void =>
      replace(
        rangeBar,
        RANGES.map((r) => h('button', { role: 'tab', class: r.id === range ? 'tab active' : 'tab', 'aria-selected': r.id === range ? 'true' : 'false', 'data-range': r.id, onclick: () => ((range = r.id), drawRanges(), void load()) }, r.label)),
      );

    let loadSeq = 0;
    const load = async (): Promise<void> => {
      if (!selected) return;
      const [assetId, point] = selected.split('|') as [string, string];
      // The link names what is shown, so a reload or a bookmark comes back to it (no hashchange: no re-mount).
      history.replaceState(null, '', `#/trends?${new URLSearchParams({ asset: assetId, point, range }).toString()}`);
      const seq = ++loadSeq;
      status.textContent = 'Loading…';
      holder.dataset.state = 'loading';
      const t0 = performance.now();
      let t: Trend;
      try {
        t = await api.trend(assetId, point, range);
      } catch (err) {
        if (closed || (err instanceof ApiError && err.status === 401)) return;
        status.textContent = `Cannot read the trend: ${err instanceof Error ? err.message : String(err)}`;
        holder.dataset.state = 'error';
        return;
      }
      if (closed || seq !== loadSeq) return;
      const fetched = performance.now();
      current = t;
      chart?.destroy();
      holder.replaceChildren();
      let drawn = false;
      const opts = chartOptions(t, Math.max(300, holder.clientWidth), () => {
        if (drawn) return;
        drawn = true;
        const done = performance.now();
        const points = t.v.filter((v) => v !== null).length;
        hmiStats.trend = { range, source: t.source, points, fetchMs: Math.round((fetched - t0) * 10) / 10, drawMs: Math.round((done - fetched) * 10) / 10, totalMs: Math.round((done - t0) * 10) / 10 };
        holder.dataset.points = String(points);
        holder.dataset.state = 'drawn';
        holder.dataset.range = range;
        performance.mark('hmi:trend-drawn');
      });
      chart = new uPlot(opts, chartData(t), holder);
      const n = t.v.filter((v) => v !== null).length;
      status.textContent =
        n === 0 ? 'No data in this range.' : `${n.toLocaleString('en-GB')} ${t.source === 'raw' ? 'raw samples' : 'points from the 1-minute rollups'}${t.min ? ' (line: mean, band: min to max)' : ''}.`;
    };

    const start = async (): Promise<void> => {
      try {
        series = await api.series();
      } catch (err) {
        if (closed || (err instanceof ApiError && err.status === 401)) return;
        status.textContent = `Cannot read the series: ${err instanceof Error ? err.message : String(err)}`;
        return;
      }
      if (closed) return;
      series.sort((a, b) => key(a).localeCompare(key(b), 'en', { numeric: true }));
      // A series named in the link (#/trends?asset=INV-01&point=103.W) is offered even when the raw
      // store does not list it (yet): its rollups may exist. Otherwise the first power series.
      if (selected && !series.some((s) => key(s) === selected)) {
        const [assetId, point] = selected.split('|') as [string, string];
        series.push({ assetId, point });
      }
      if (!selected) {
        const power = series.find((s) => /(^|\.)W$/.test(s.point)) ?? series[0];
        selected = power ? key(power) : '';
      }
      replace(select, series.map((s) => h('option', { value: key(s), ...(key(s) === selected ? { selected: true } : {}) }, `${s.assetId} ${s.point}${s.unit ? ` (${s.unit})` : ''}`)));
      if (!selected) {
        status.textContent = 'No series stored yet.';
        return;
      }
      await load();
    };
    select.addEventListener('change', () => {
      selected = select.value;
      void load();
    });
    drawRanges();
    void start();

    const onResize = (): void => chart?.setSize({ width: Math.max(300, holder.clientWidth), height: chart.height });
    window.addEventListener('resize', onResize);
    const offs = [
      live.on('telemetry', (ev) => {
        // Only the raw hour grows live; the rollups change once a minute and are re-read on demand.
        if (!chart || !current || range !== '1h' || current.assetId !== ev.assetId) return;
        const v = ev.values[current.point];
        const ts = typeof ev.ts === 'number' ? ev.ts : Date.parse(ev.ts);
        if (typeof v !== 'number' || !Number.isFinite(ts) || ts <= (current.t.at(-1) ?? 0)) return;
        current.t.push(ts);
        current.v.push(v);
        const from = ts - 3_600_000;
        while (current.t.length && current.t[0]! < from) {
          current.t.shift();
          current.v.shift();
        }
        chart.setData(chartData(current));
        holder.dataset.points = String(current.v.filter((x) => x !== null).length);
      }),
    ];
    return () => {
      closed = true;
      window.removeEventListener('resize', onResize);
      chart?.destroy();
      for (const off of offs) off();
    };
  },
};
