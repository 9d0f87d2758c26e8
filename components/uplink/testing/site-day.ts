/**
 * A simulated site-day of what the Uplink receives, for tests and benchmarks (not shipped: only
 * tests and scripts/bench import it).
 *
 * The site model is the Aggregator benchmark's (scripts/bench/aggregator.ts): a 10k-point site is
 * 1000 inverters of 10 points each (W, VA, VAr, PF, A, PhVphA, Hz, DCV, DCW, TmpCab), sampled at
 * 1 Hz. After aggregation the Uplink gets, per day:
 *
 *   class    message                                 per asset per day   full site (1000 assets)
 *   1m       AggregateMessage, 10 series (5 stats)   1440                1 440 000
 *   15m      AggregateMessage, 10 series (5 stats)   96                  96 000
 *   1d       AggregateMessage, 10 series + energy    1                   1 000
 *   alarms   AlarmMessage (raised + cleared)         4                   4 000
 *   events   DeviceStatus / ControlResult            2                   2 000
 *   health   SiteHealthSummary (site level)          -                   288 (every 5 min, specification §8.1)
 *
 * Alarm and event rates are our assumption (two alarm episodes and two device events per inverter
 * and day); the rollup counts follow from the intervals. A run at `assets` < 1000 is that fraction
 * of the site; health stays at its site-level rate.
 */
import { CONTRACT_VERSION, type AggregateMessage, type AlarmMessage, type ControlResult, type DeviceStatus, type SiteHealthSummary } from '../../lib/contract';
import type { RecordClass } from '../classes';

export const SITE_ASSETS = 1000;
export const POINTS_PER_ASSET = 10;
const DAY = 86_400_000;
const POINTS = ['W', 'VA', 'VAr', 'PF', 'A', 'PhVphA', 'Hz', 'DCV', 'DCW', 'TmpCab'] as const;
const UNITS: Record<string, string> = { W: 'W', VA: 'VA', VAr: 'var', PF: '', A: 'A', PhVphA: 'V', Hz: 'Hz', DCV: 'V', DCW: 'W', TmpCab: 'Cel' };
export const ALARMS_PER_ASSET_DAY = 4;
export const EVENTS_PER_ASSET_DAY = 2;
export const HEALTH_PER_DAY = 288;

export interface SiteRecord {
  cls: RecordClass;
  /** Unique per record of the day: how tests count arrivals. */
  id: string;
  /** Simulated time the record is produced (ms). */
  at: number;
  payload: AggregateMessage | AlarmMessage | DeviceStatus | ControlResult | SiteHealthSummary;
}

/** The id of a record as it arrives in the cloud (one NDJSON line / UplinkBatch item). */
export function recordId(p: unknown): string {
  if (typeof p !== 'object' || p === null) return 'invalid';
  const r = p as Record<string, unknown>;
  if (typeof r['alarmId'] === 'string') return `alarm:${r['alarmId']}:${String(r['state'])}`;
  if (typeof r['commandId'] === 'string') return `control:${r['commandId']}`;
  if (typeof r['interval'] === 'string') return `agg:${String(r['assetId'])}:${r['interval']}:${String(r['start'])}`;
  if (typeof r['state'] === 'string' && typeof r['assetId'] === 'string') return `status:${r['assetId']}:${String(r['ts'])}`;
  if (Array.isArray(r['components'])) return `health:${String(r['ts'])}`;
  return 'unknown';
}

const sun = (t: number): number => Math.max(0, Math.sin((((t % DAY) / 1000 - 6 * 3600) / (12 * 3600)) * Math.PI));

function stats(a: number, t: number, withSum: boolean, n: number): AggregateMessage['series'] {
  const s = sun(t);
  const w = s * 50_000 * (0.97 + 0.03 * Math.sin(t / 97_000 + a));
  const base: Record<string, number> = { W: w, VA: w * 1.02, VAr: w * 0.1, PF: s * 0.99, A: w / 230, PhVphA: 230 + Math.sin(t / 31_000), Hz: 50 + Math.sin(t / 53_000) * 0.02, DCV: 600 + s * 150, DCW: w * 1.03, TmpCab: 25 + s * 20 };
  const out: AggregateMessage['series'] = {};
  // Measurement noise (deterministic): real rollups are not smooth curves, and gzip would flatter them.
  let seed = (Math.floor(t / 1000) * 2654435761 + a * 40503) >>> 0 || 1;
  const noise = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return ((seed >>> 0) / 4294967296 - 0.5) * 0.02;
  };
  for (const p of POINTS) {
    const v = (base[p] ?? 0) * (1 + noise());
    const r2 = (x: number): number => Math.round(x * (1 + noise()) * 100) / 100;
    const unit = UNITS[p];
    out[p] = { count: n, min: r2(v * 0.98), max: r2(v * 1.02), avg: r2(v), ...(withSum ? { sum: r2(v * n) } : { stddev: r2(Math.abs(v) * 0.007) }), ...(unit ? { u: unit } : {}) };
  }
  return out;
}

function health(site: string, ts: number): SiteHealthSummary {
  const names = ['modbus-adapter', 'processor', 'aggregator', 'uplink', 'health'];
  return {
    schemaVersion: CONTRACT_VERSION,
    siteId: site,
    ts,
    status: 'healthy',
    issues: [],
    components: names.map((c) => ({
      component: c,
      componentName: null,
      version: '1.0.0',
      state: 'running',
      stale: false,
      lastReportAt: ts - 4000,
      uptimeMs: ts % DAY,
      metrics: { messagesIn: 1000, messagesOut: 1000, errors: 0, lastError: null, latencyMs: { p50: 2, p99: 9, max: 20, samples: 100 }, queueDepth: 0, queues: {}, connectionState: 'connected', rejections: {}, dropped: {} },
    })),
    system: { cpuPercent: 12.5, memoryPercent: 41.2, diskPercent: 33.1, loadAvg1m: 0.4, uptimeS: Math.floor((ts % DAY) / 1000) },
  };
}

/**
 * Every record of one simulated day, in production order (by simulated time). `assets` inverters
 * (1000 = the full 10k-point site); `classes` restricts which classes are generated.
 */
export function* siteDay(o: { site: string; dayStart: number; assets: number; classes?: readonly RecordClass[] }): Generator<SiteRecord> {
  const want = (c: RecordClass): boolean => !o.classes || o.classes.includes(c);
  const assetId = (a: number): string => `INV-${String(a + 1).padStart(4, '0')}`;
  const alarmEvery = Math.floor(1440 / ALARMS_PER_ASSET_DAY);
  const eventEvery = Math.floor(1440 / EVENTS_PER_ASSET_DAY);
  const header = { schemaVersion: CONTRACT_VERSION, siteId: o.site } as const;
  for (let m = 0; m < 1440; m++) {
    const start = o.dayStart + m * 60_000;
    const end = start + 60_000;
    for (let a = 0; a < o.assets; a++) {
      if (want('1m')) yield { cls: '1m', id: `agg:${assetId(a)}:1m:${start}`, at: end, payload: { ...header, assetId: assetId(a), interval: '1m', start, end, series: stats(a, start, false, 60) } };
      if (want('15m') && (m + 1) % 15 === 0) {
        const s15 = end - 900_000;
        yield { cls: '15m', id: `agg:${assetId(a)}:15m:${s15}`, at: end, payload: { ...header, assetId: assetId(a), interval: '15m', start: s15, end, series: stats(a, s15, true, 900) } };
      }
      // Alarm episodes: raised and cleared 10 minutes later, staggered per asset.
      const phase = (m + a * 7) % alarmEvery;
      if (want('alarms') && (phase === 0 || phase === 10)) {
        const episode = Math.floor((m + a * 7) / alarmEvery);
        const state = phase === 0 ? 'raised' : 'cleared';
        const alarmId = `${assetId(a)}-over_temperature-${episode}`;
        yield { cls: 'alarms', id: `alarm:${alarmId}:${state}`, at: end, payload: { ...header, assetId: assetId(a), alarmId, type: 'over_temperature', severity: 'high', state, ts: end, source: 'processor', point: 'TmpCab', value: 81.5, threshold: 80, message: 'cabinet temperature above 80 Cel' } };
      }
      if (want('events') && (m + a * 13) % eventEvery === 0) {
        yield { cls: 'events', id: `status:${assetId(a)}:${end}`, at: end, payload: { ...header, assetId: assetId(a), ts: end, state: 'degraded', lastSeen: end - 5000, consecutiveFailures: 3, message: 'Modbus timeout on unit 1' } };
      }
    }
    if (want('health') && (m + 1) % 5 === 0) yield { cls: 'health', id: `health:${end}`, at: end, payload: health(o.site, end) };
  }
  if (want('1d')) {
    const end = o.dayStart + DAY;
    for (let a = 0; a < o.assets; a++) {
      const series = stats(a, o.dayStart + DAY / 2, true, 86_400);
      const w = series['W'];
      if (w) w.energyWh = Math.round((w.avg ?? 0) * 12);
      yield { cls: '1d', id: `agg:${assetId(a)}:1d:${o.dayStart}`, at: end, payload: { ...header, assetId: assetId(a), interval: '1d', start: o.dayStart, end, series } };
    }
  }
}

/** Records per class of a day at `assets` (what siteDay yields). */
export function dayCounts(assets: number): Record<RecordClass, number> {
  const counts: Record<RecordClass, number> = { alarms: 0, events: 0, '1m': 0, '15m': 0, '1d': 0, health: 0 };
  for (const r of siteDay({ site: 'x', dayStart: 0, assets, classes: ['alarms', 'events'] })) counts[r.cls]++;
  return { ...counts, '1m': 1440 * assets, '15m': 96 * assets, '1d': assets, health: HEALTH_PER_DAY };
}
