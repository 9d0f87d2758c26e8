/**
 * The site as Analytics models it (docs/analytics-component.md "The site model"): for each
 * configured asset, the accumulators of the formula modules (performance.ts, strings.ts, soiling.ts,
 * health.ts) and the tracker monitors (tracker.ts), fed the same way from live telemetry and from
 * the store; `evaluate` turns them into figures (one per asset and kind, plus the site's) and
 * alarm judgements.
 *
 * Nothing here does I/O or reads a clock: time comes in with the samples and `now`, so a replay of
 * the store gives the figures the live stream gave.
 */
import { Zone } from '../aggregator/tz';
import type { AnalyticsKind, Quality } from '../lib/contract';
import type { StoreReader } from '../lib/store';
import type { Judgement } from './alarms';
import { thresholdsFor, type AnalyticsConfig } from './config';
import { TrackerMonitor } from './tracker';

/** One result as the component publishes it (AnalyticsMessage without the envelope). */
export interface Figure {
  assetId: string;
  kind: AnalyticsKind;
  ts: number;
  value: number | null;
  u?: string;
  details: Record<string, unknown>;
}

/** What became of a fed sample ('ok' or the reason it was not used); undefined: not a point we read. */
export type Fed = string | undefined;

/** The asset id of site-level figures. */
export const SITE_ASSET = 'site';

export class SiteModel {
  private readonly trackers = new Map<string, TrackerMonitor>();
  private readonly zone: Zone;
  /** asset -> points of interest (for the store replay). */
  private readonly interest = new Map<string, Set<string>>();

  constructor(private readonly c: Readonly<AnalyticsConfig>) {
    this.zone = new Zone(c.timeZone);
    this.build();
  }

  private build(only?: ReadonlySet<string>): void {
    const loc = { latitude: this.c.latitude, longitude: this.c.longitude, elevation: this.c.elevationM };
    for (const [id, t] of Object.entries(this.c.trackers)) {
      if (only && !only.has(id)) continue;
      const m = new TrackerMonitor(id, t, loc);
      this.trackers.set(id, m);
      this.interest.set(id, new Set(m.points()));
    }
  }

  isAsset(assetId: string): boolean {
    return this.interest.has(assetId);
  }

  /** Points read of an asset. */
  pointsOf(assetId: string): string[] {
    return [...(this.interest.get(assetId) ?? [])];
  }

  feed(assetId: string, point: string, ts: number, v: unknown, q: Quality, u?: string): Fed {
    void u;
    const t = this.trackers.get(assetId);
    if (t) return t.feed(point, ts, v, q) ? 'ok' : undefined;
    return undefined;
  }

  /** Start of the local day holding `now`: what a start or a rebuild replays from the store. */
  replayFrom(now: number): number {
    return this.zone.dayOf(now).start;
  }

  /** New, empty accumulators for these assets (before their day is replayed again). */
  resetAssets(assets: readonly string[]): void {
    this.build(new Set(assets));
  }

  /**
   * Feeds [from, to] of every series read (or of some assets) from the store, each asset's samples
   * in time order across its points (a state sample must come before the power it classifies).
   */
  replay(store: StoreReader, from: number, to: number, assets?: readonly string[]): { samples: number; series: number; ms: number } {
    const t0 = performance.now();
    const units = new Map<string, string | null>();
    for (const s of store.listSeries()) units.set(`${s.assetId}\u0000${s.point}`, s.unit);
    let samples = 0;
    let series = 0;
    for (const assetId of assets ?? [...this.interest.keys()]) {
      const rows: Array<{ ts: number; point: string; v: number | null; q: Quality; u: string | undefined }> = [];
      for (const point of this.pointsOf(assetId)) {
        const key = `${assetId}\u0000${point}`;
        if (!units.has(key)) continue;
        series++;
        const u = units.get(key) ?? undefined;
        for (const s of store.range({ assetId, point }, from, to)) rows.push({ ts: s.ts, point, v: s.v, q: s.q, u });
      }
      rows.sort((a, b) => a.ts - b.ts);
      for (const r of rows) this.feed(assetId, r.point, r.ts, r.v, r.q, r.u);
      samples += rows.length;
    }
    return { samples, series, ms: performance.now() - t0 };
  }

  evaluate(now: number): { figures: Figure[]; judgements: Judgement[] } {
    const figures: Figure[] = [];
    const judgements: Judgement[] = [];
    const maxAge = Math.max(3 * this.c.evaluateIntervalMs, 180_000);
    for (const [id, m] of this.trackers) {
      const f = m.evaluate(now, maxAge);
      figures.push({ assetId: id, kind: 'tracker_deviation', ts: now, value: f.value, u: 'deg', details: f.details });
      const th = thresholdsFor(this.c, id);
      judgements.push({
        assetId: id,
        type: 'tracker_misalignment',
        subject: '',
        // The interval's mean |deviation| when there is one, so one sample caught mid-move does not decide.
        active: f.value === null ? null : judgeAbs(f, th.trackerDeviationDeg),
        forMs: th.trackerForMs,
        value: f.value,
        threshold: th.trackerDeviationDeg,
        point: this.c.trackers[id]?.anglePoint ?? '',
        message: f.value === null ? undefined : `tracker ${id} is ${Math.abs(f.value).toFixed(1)}° off its ideal angle (${String(f.details['idealDeg'])}°)`,
        details: { idealDeg: f.details['idealDeg'], actualDeg: f.details['actualDeg'] },
      });
    }
    return { figures, judgements };
  }
}

function judgeAbs(f: { value: number | null; details: Record<string, unknown> }, limit: number): boolean {
  const mean = f.details['meanAbsDeg'];
  const dev = typeof mean === 'number' ? mean : Math.abs(f.value ?? 0);
  return dev > limit;
}
