/**
 * The latest inputs LocalControl decides on (docs/local-control.md "Interlocks"): processed
 * telemetry points, analytics results and ML scores with their sample time and quality, device
 * status, and the inverters of the site with their rated power (for the capacity cap).
 *
 * Only points some rule, guard, rating point, relay or acknowledge input looks at are kept (an
 * inverter publishes a hundred points a poll; the interest of each asset/point pair is decided
 * once and cached), so memory is bounded by the configuration, not by the site's telemetry.
 */
import type { AnalyticsMessage, DeviceStatus, MlResult, PointValue, Quality, TelemetryMessage } from '../lib/contract';

export interface Sample {
  v: PointValue;
  q: Quality;
  /** Sample time (the adapter's poll), ms since epoch. */
  ts: number;
  u?: string;
}

/** SunSpec inverter models (101-103 single/split/three phase, 111-113 float variants, 701 DER AC measurement). */
export const INVERTER_MODELS: ReadonlySet<number> = new Set([101, 102, 103, 111, 112, 113, 701]);
const MAX_INTEREST_CACHE = 200000;

export class Inputs {
  private readonly values = new Map<string, Map<string, Sample>>();
  private readonly interest = new Map<string, boolean>();
  private readonly analyticsByAsset = new Map<string, Map<string, { value: number | null; ts: number }>>();
  private readonly mlByAsset = new Map<string, Map<string, { score: number | undefined; ts: number }>>();
  private readonly statusByAsset = new Map<string, DeviceStatus>();
  private readonly knownAssets = new Set<string>();

  constructor(private interesting: (assetId: string, point: string) => boolean) {}

  /** New rules or outputs: interest is decided again (kept samples stay). */
  setInterest(fn: (assetId: string, point: string) => boolean): void {
    this.interesting = fn;
    this.interest.clear();
  }

  /** Stores the points of interest; returns their names (empty: nothing here concerns LocalControl). */
  onTelemetry(msg: TelemetryMessage): string[] {
    this.knownAssets.add(msg.assetId);
    let map = this.values.get(msg.assetId);
    const kept: string[] = [];
    for (const [name, p] of Object.entries(msg.points)) {
      const k = `${msg.assetId}\u0000${name}`;
      let yes = this.interest.get(k);
      if (yes === undefined) {
        if (this.interest.size >= MAX_INTEREST_CACHE) this.interest.clear();
        yes = this.interesting(msg.assetId, name);
        this.interest.set(k, yes);
      }
      if (!yes) continue;
      if (!map) this.values.set(msg.assetId, (map = new Map()));
      const prev = map.get(name);
      // Interpolated fills and late samples arrive behind newer ones: the newest sample wins.
      if (prev && prev.ts > msg.ts) continue;
      map.set(name, p.u === undefined ? { v: p.v, q: p.q, ts: msg.ts } : { v: p.v, q: p.q, ts: msg.ts, u: p.u });
      kept.push(name);
    }
    return kept;
  }

  sample(assetId: string, point: string): Sample | undefined {
    return this.values.get(assetId)?.get(point);
  }

  /** Every kept point of an asset. */
  points(assetId: string): ReadonlyMap<string, Sample> | undefined {
    return this.values.get(assetId);
  }

  assetsWithValues(): IterableIterator<string> {
    return this.values.keys();
  }

  onAnalytics(a: AnalyticsMessage): void {
    this.knownAssets.add(a.assetId);
    let m = this.analyticsByAsset.get(a.assetId);
    if (!m) this.analyticsByAsset.set(a.assetId, (m = new Map()));
    const prev = m.get(a.kind);
    if (!prev || prev.ts <= a.ts) m.set(a.kind, { value: a.value, ts: a.ts });
  }

  analytics(assetId: string, kind: string): { value: number | null; ts: number } | undefined {
    return this.analyticsByAsset.get(assetId)?.get(kind);
  }

  analyticsAssets(): IterableIterator<string> {
    return this.analyticsByAsset.keys();
  }

  onMl(r: MlResult): void {
    this.knownAssets.add(r.assetId);
    let m = this.mlByAsset.get(r.assetId);
    if (!m) this.mlByAsset.set(r.assetId, (m = new Map()));
    const prev = m.get(r.model);
    if (!prev || prev.ts <= r.ts) m.set(r.model, { score: r.score, ts: r.ts });
  }

  ml(assetId: string, model: string): { score: number | undefined; ts: number } | undefined {
    return this.mlByAsset.get(assetId)?.get(model);
  }

  mlAssets(): IterableIterator<string> {
    return this.mlByAsset.keys();
  }

  /** Returns the previous status of the asset. */
  onStatus(s: DeviceStatus): DeviceStatus | undefined {
    this.knownAssets.add(s.assetId);
    const prev = this.statusByAsset.get(s.assetId);
    this.statusByAsset.set(s.assetId, s);
    return prev;
  }

  status(assetId: string): DeviceStatus | undefined {
    return this.statusByAsset.get(assetId);
  }

  /** Every asset seen on any input (telemetry, status, analytics, ML). */
  known(): ReadonlySet<string> {
    return this.knownAssets;
  }
}

/**
 * The site's inverters and their rated power: from `capacityW` in the configuration, from the
 * rating points in telemetry (SunSpec model 120 WRtg; learned values are persisted, so a restart
 * knows them before the first poll), and from device status naming an inverter model (an inverter
 * whose rating is not known yet makes the site's capacity unknown).
 */
export class Fleet {
  private readonly learned = new Map<string, number>();
  private readonly inverters = new Set<string>();

  constructor(private configured: Readonly<Record<string, number>>) {}

  setConfigured(c: Readonly<Record<string, number>>): void {
    this.configured = c;
  }

  load(rows: ReadonlyArray<{ assetId: string; watts: number }>): void {
    for (const r of rows) {
      this.learned.set(r.assetId, r.watts);
      this.inverters.add(r.assetId);
    }
  }

  /** True when the status names an inverter we did not know. */
  noteStatus(s: DeviceStatus): boolean {
    if (this.inverters.has(s.assetId) || !s.models?.some((m) => INVERTER_MODELS.has(m))) return false;
    this.inverters.add(s.assetId);
    return true;
  }

  /** True when the rating is new or changed (to be persisted). */
  noteRating(assetId: string, watts: number): boolean {
    this.inverters.add(assetId);
    if (this.learned.get(assetId) === watts) return false;
    this.learned.set(assetId, watts);
    return true;
  }

  capacity(assetId: string): number | undefined {
    return this.configured[assetId] ?? this.learned.get(assetId);
  }

  /** Every inverter: configured, rated in telemetry or announced. */
  all(): string[] {
    return [...new Set([...Object.keys(this.configured), ...this.inverters])].sort();
  }

  /** The site's rated power, and the inverters whose rating is not known. */
  total(): { watts: number; unknown: string[] } {
    let watts = 0;
    const unknown: string[] = [];
    for (const a of this.all()) {
      const c = this.capacity(a);
      if (c === undefined) unknown.push(a);
      else watts += c;
    }
    return { watts, unknown };
  }
}
