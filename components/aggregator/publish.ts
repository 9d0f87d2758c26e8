/**
 * Turns outbox entries into contract messages: one AggregateMessage per (interval, bucket, asset)
 * on `site/{siteId}/aggregates/{interval}/{assetId}` and one DailySummary per closed day on
 * `site/{siteId}/summary/daily` (dCMMS edge specification §5.2 sync_to_cloud, docs/specification.md; the Uplink forwards
 * them). An entry leaves the outbox only after the bus took the message, so a crash between the
 * commit of a bucket and its publication republishes it (at least once; the cloud keys a bucket by
 * site, asset, interval and start and keeps the highest `revision`).
 */
import { CONTRACT_VERSION, type AggregateInterval, type AggregateMessage, type AggregateStats, type DailyAssetSummary, type DailySummary } from '../lib/contract';
import type { AggregatorConfig } from './config';
import { SUMMARY, type AggDb, type Level, type OutboxLevel, type RollRow, type SeriesRow } from './db';
import { energyWh, statsFor, type EnergyKind } from './rollup';
import { MINUTE, QUARTER } from './engine';

export type Outgoing = { kind: 'aggregate'; message: AggregateMessage } | { kind: 'summary'; message: DailySummary };

export function energyKind(s: SeriesRow, cfg: Readonly<AggregatorConfig>): EnergyKind {
  if (s.unit === 'W' || (s.unit === null && cfg.powerPoints.includes(s.point))) return 'power';
  if (s.unit === 'Wh' || (s.unit === null && cfg.energyCounterPoints.includes(s.point))) return 'counter';
  return undefined;
}

/** Builds the messages for the outbox entries of one (level, start); entries without rows yield nothing. */
export function buildMessages(db: AggDb, cfg: Readonly<AggregatorConfig>, level: OutboxLevel, start: number, assets: ReadonlySet<string>): Outgoing[] {
  const byId = db.seriesById();
  if (level === SUMMARY) {
    const s = buildSummary(db, cfg, byId, start);
    return s ? [{ kind: 'summary', message: s }] : [];
  }
  const end = level === '1m' ? start + MINUTE : level === '15m' ? start + QUARTER : (db.day(start)?.end ?? start + 86_400_000);
  const perAsset = new Map<string, { series: Record<string, AggregateStats>; revision: number }>();
  for (const r of db.rowsAt(level, start)) {
    const s = byId.get(r.sid);
    if (!s || !assets.has(s.asset)) continue;
    let a = perAsset.get(s.asset);
    if (!a) perAsset.set(s.asset, (a = { series: {}, revision: 0 }));
    a.series[s.point] = statsFor(level as AggregateInterval, r, s.unit, energyKind(s, cfg));
    a.revision = Math.max(a.revision, r.rev);
  }
  return [...perAsset].map(([assetId, a]) => ({
    kind: 'aggregate' as const,
    message: { schemaVersion: CONTRACT_VERSION, siteId: cfg.siteId, assetId, interval: level as Level, start, end, series: a.series, revision: a.revision },
  }));
}

function buildSummary(db: AggDb, cfg: Readonly<AggregatorConfig>, byId: ReadonlyMap<number, SeriesRow>, start: number): DailySummary | undefined {
  const day = db.day(start);
  if (!day) return undefined;
  const assets: Record<string, DailyAssetSummary> = {};
  const counters = new Map<string, number>();
  const power = new Map<string, RollRow>();
  for (const r of db.rowsAt('1d', start)) {
    const s = byId.get(r.sid);
    if (!s) continue;
    const a = (assets[s.asset] ??= { series: 0, samples: 0 });
    a.series += 1;
    a.samples += r.count;
    const kind = energyKind(s, cfg);
    // The asset's own power and energy points (powerPoints / energyCounterPoints, first match).
    if (kind === 'counter' && cfg.energyCounterPoints.includes(s.point) && !counters.has(s.asset)) {
      const e = energyWh(r, kind);
      if (e !== undefined) counters.set(s.asset, e);
    }
    if (kind === 'power' && cfg.powerPoints.includes(s.point) && !power.has(s.asset)) power.set(s.asset, r);
  }
  let total: number | undefined;
  for (const [asset, a] of Object.entries(assets)) {
    const p = power.get(asset);
    if (p && p.count > 0) {
      a.peakW = p.max as number;
      a.avgW = p.sum / p.count;
    }
    const e = counters.get(asset) ?? (p ? energyWh(p, 'power') : undefined);
    if (e !== undefined) {
      a.energyWh = e;
      total = (total ?? 0) + e;
    }
  }
  return {
    schemaVersion: CONTRACT_VERSION,
    siteId: cfg.siteId,
    day: day.day,
    timeZone: cfg.timeZone,
    start: day.start,
    end: day.end,
    revision: day.rev,
    ...(total !== undefined ? { energyWh: total } : {}),
    assets,
  };
}
