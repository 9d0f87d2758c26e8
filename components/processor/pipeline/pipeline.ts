/**
 * The Processor's hot path for one validated raw telemetry message (dCMMS edge specification §3.1
 * step 3, docs/specification.md: data validation with range checks and quality flags, unit
 * conversion, timestamp synchronisation, duplicate removal, missing-data interpolation):
 *
 *   timestamp checks -> per point: dedupe, quality, type, unit conversion, range
 *   -> short-gap interpolation -> store samples + processed telemetry + alarm inputs.
 *
 * Pure computation on injected time: no I/O, no timers (the factory does those). Rejections are
 * reported through `reject(reason, detail)` and never throw.
 */
import { CONTRACT_VERSION, type Point, type Quality, type TelemetryMessage } from '../../lib/contract';
import type { StoreSample } from '../../lib/store';
import type { ProcessorConfig } from '../config';
import { symbolicToNumber } from './enums';
import { PointRules } from './points';
import { AssetState, type SeriesState, type ValueKind } from './series';

/** At most this many samples are filled into one gap (bounded work per message). */
export const MAX_FILL_SAMPLES = 60;

export interface SeriesUpdate {
  series: SeriesState;
  /** Canonical number (enums/bitfields as their SunSpec number), or null. */
  num: number | null;
  value: number | string | boolean | null;
  q: Quality;
}

export interface PipelineResult {
  /** What goes to the store (interpolated samples included). */
  samples: StoreSample[];
  /** Processed telemetry, oldest first: interpolation fills, then the message itself. */
  processed: TelemetryMessage[];
  /** In-order samples the alarm rules see (out-of-order ones must not move alarm state). */
  updates: SeriesUpdate[];
  asset: AssetState;
  inOrder: boolean;
}

export type RejectFn = (reason: string, detail: string, assetId?: string) => void;

export type PipelineConfig = Pick<
  ProcessorConfig,
  'siteId' | 'unknownPoints' | 'maxPointsPerAsset' | 'maxFutureMs' | 'maxPastMs' | 'maxClockSkewMs' | 'maxInterpolationGapMs' | 'ranges' | 'unitConversions'
>;

export class Pipeline {
  private readonly assets = new Map<string, AssetState>();
  private rules: PointRules;

  constructor(
    private cfg: Readonly<PipelineConfig>,
    private readonly reject: RejectFn,
  ) {
    this.rules = new PointRules(cfg.ranges, cfg.unitConversions);
  }

  /**
   * New limits, ranges and conversions for the next messages. Per-series state (last sample,
   * learned period, duplicates) is kept, so a configuration change neither re-stores a duplicate
   * nor breaks interpolation.
   */
  reconfigure(cfg: Readonly<PipelineConfig>): void {
    this.cfg = cfg;
    this.rules = new PointRules(cfg.ranges, cfg.unitConversions);
  }

  /** Forget the alarm engine's per-series bindings (the rules changed; a new engine binds again). */
  resetAlarmBindings(): void {
    for (const a of this.assets.values()) for (const s of a.series.values()) s.alarm = undefined;
  }

  asset(id: string): AssetState {
    let a = this.assets.get(id);
    if (!a) this.assets.set(id, (a = new AssetState(id)));
    return a;
  }

  assetIds(): string[] {
    return [...this.assets.keys()];
  }

  /**
   * Process one message whose shape the contract validator already accepted and whose asset is
   * known. Returns undefined when the whole message is rejected.
   */
  process(msg: TelemetryMessage, now: number): PipelineResult | undefined {
    const { cfg } = this;
    const ts = msg.ts;
    // Timestamp checks (docs/processor.md, step 5): device time against gateway time.
    if (ts > now + cfg.maxFutureMs) {
      this.reject('future_timestamp', `ts ${ts} is ${ts - now} ms ahead of gateway time`, msg.assetId);
      return undefined;
    }
    if (ts < now - cfg.maxPastMs) {
      this.reject('stale_timestamp', `ts ${ts} is ${now - ts} ms behind gateway time`, msg.assetId);
      return undefined;
    }
    const skewed = Math.abs(now - ts) > cfg.maxClockSkewMs;
    const a = this.asset(msg.assetId);
    const inOrder = ts > a.lastTs;
    const period = a.periodMs();
    const samples: StoreSample[] = [];
    const updates: SeriesUpdate[] = [];
    const out: Record<string, Point> = {};
    let fills: Map<number, Record<string, Point>> | undefined;
    const names = Object.keys(msg.points);
    const accepted: string[] = [];

    for (const name of names) {
      const p = msg.points[name] as Point;
      let s = a.getSeries(name);
      if (!s) {
        const spec = this.rules.spec(name);
        if (cfg.unknownPoints === 'reject' && !spec.known) {
          this.reject('unknown_point', `${msg.assetId}.${name} is not a configured point`, msg.assetId);
          continue;
        }
        if (a.series.size >= cfg.maxPointsPerAsset) {
          this.reject('too_many_points', `${msg.assetId} already has ${a.series.size} points; ${name} refused`, msg.assetId);
          continue;
        }
        s = a.addSeries(name);
      }
      // Duplicate removal: same asset, point and sample time.
      if (ts === s.lastTs || (ts < s.lastTs && a.seen(ts, name))) {
        this.reject('duplicate', `${msg.assetId}.${name}@${ts}`, msg.assetId);
        continue;
      }
      let q: Quality = p.q;
      if (q === 'interpolated') {
        this.reject('bad_quality', `${msg.assetId}.${name}: only the Processor marks samples interpolated`, msg.assetId);
        continue;
      }
      // Not implemented by the device: no information to keep (docs/processor.md).
      if (q === 'not_implemented') continue;
      const spec = this.rules.spec(name);
      const raw = p.v;
      let value: number | string | boolean | null = raw;
      let num: number | null = null;
      let kind: ValueKind | undefined;
      let unit = p.u;
      if (q === 'bad' || raw === null) {
        // Spec §3.2: quality "bad" is not valid data. Kept as a valueless sample: the store shows
        // the failed read, and interpolation does not bridge it.
        q = 'bad';
        value = null;
      } else if (typeof raw === 'number') {
        kind = 'number';
        num = this.rules.convert(raw, unit);
        unit = this.rules.unitOf(unit);
        value = num;
        const r = spec.range;
        if (r && (num < r.min || num > r.max)) {
          if (r.action === 'reject') {
            this.reject('out_of_range', `${msg.assetId}.${name} = ${num} outside ${r.min}..${r.max}`, msg.assetId);
            continue;
          }
          q = 'uncertain';
        }
      } else if (typeof raw === 'string') {
        kind = 'string';
        if (spec.known || s.kind === 'number') {
          this.reject('string_for_number', `${msg.assetId}.${name} is numeric, got a string`, msg.assetId);
          continue;
        }
        num = symbolicToNumber(name, raw) ?? null;
      } else {
        kind = 'boolean';
        num = raw ? 1 : 0;
      }
      if (kind !== undefined) {
        if (s.kind === undefined) s.kind = kind;
        else if (s.kind !== kind) {
          this.reject('wrong_type', `${msg.assetId}.${name} was a ${s.kind}, got a ${kind}`, msg.assetId);
          continue;
        }
      }
      if (skewed && q === 'good') q = 'uncertain';

      if (inOrder) {
        // Short-gap interpolation (spec §3.1 "Missing data interpolation"): only between two
        // valued samples of a numeric series, only when nothing at all arrived in between.
        if (kind === 'number' && num !== null && s.lastNum !== null && period !== undefined && cfg.maxInterpolationGapMs > 0) {
          const gap = ts - s.lastTs;
          const steps = Math.round(gap / period);
          if (steps >= 2 && gap <= cfg.maxInterpolationGapMs && steps - 1 <= MAX_FILL_SAMPLES) {
            fills ??= new Map();
            for (let k = 1; k < steps; k++) {
              const t = s.lastTs + Math.round((k * gap) / steps);
              const v = s.lastNum + ((num - s.lastNum) * k) / steps;
              samples.push({ assetId: msg.assetId, point: name, ts: t, v, q: 'interpolated' });
              let pts = fills.get(t);
              if (!pts) fills.set(t, (pts = {}));
              pts[name] = unit === undefined ? { v, q: 'interpolated' } : { v, u: unit, q: 'interpolated' };
            }
          }
        }
        s.lastTs = ts;
        s.lastNum = q === 'bad' ? null : num;
        s.lastValue = value;
        s.lastQ = q;
        updates.push({ series: s, num, value, q });
      }
      accepted.push(name);
      // Strings without a SunSpec numbering are published but not stored (docs/store.md).
      if (num !== null || value === null) samples.push({ assetId: msg.assetId, point: name, ts, v: num, q, u: kind === 'number' ? unit : undefined });
      out[name] = unit === undefined ? { v: value, q } : { v: value, u: unit, q };
    }

    a.remember(ts, accepted, inOrder);
    const processed: TelemetryMessage[] = [];
    if (fills) {
      for (const t of [...fills.keys()].sort((x, y) => x - y)) {
        processed.push({ schemaVersion: CONTRACT_VERSION, siteId: msg.siteId, assetId: msg.assetId, ts: t, seq: a.outSeq++, points: fills.get(t) as Record<string, Point> });
      }
    }
    if (accepted.length > 0) processed.push({ schemaVersion: CONTRACT_VERSION, siteId: msg.siteId, assetId: msg.assetId, ts, seq: a.outSeq++, points: out });
    return { samples, processed, updates, asset: a, inOrder };
  }
}
