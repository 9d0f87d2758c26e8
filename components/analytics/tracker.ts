/**
 * Tracker deviation (docs/analytics-component.md "Tracker deviation"): the tracker controller's
 * measured rotation against the ideal one for the site's place and the row's geometry (SPA sun
 * position and single-axis tracking with backtracking, components/lib/solar.ts).
 *
 * The figure is the signed deviation actual - ideal in degrees, from the newest angle sample (at
 * most `maxAgeMs` old), with the ideal angle computed at that sample's time. It is null, with the
 * reason in details, when the row is not tracking on purpose (a stow bit set: stow, wind stow;
 * or a mode other than the tracking ones), when the sun is down, and when there is no fresh good
 * angle. `details.meanAbsDeg` is the mean |deviation| over the evaluation interval (every sample),
 * so one sample taken while the row moves does not decide alone.
 */
import type { Quality } from '../lib/contract';
import { solarPosition, trackerRotation, type TrackerGeometry } from '../lib/solar';
import type { TrackerConfig } from './config';

export type TrackerNullReason = 'stowed' | 'not_tracking_mode' | 'night' | 'missing_angle' | 'stale_angle';

export interface TrackerFigure {
  value: number | null;
  reason: TrackerNullReason | null;
  details: Record<string, unknown>;
}

interface Sample {
  ts: number;
  v: unknown;
  q: Quality;
}

const GOOD: ReadonlySet<Quality> = new Set(['good', 'interpolated']);

export class TrackerMonitor {
  private angle: Sample | undefined;
  private status: Sample | undefined;
  private mode: Sample | undefined;
  /** |deviation| of every angle sample since the last evaluation (sum, count), tracking samples only. */
  private absSum = 0;
  private absN = 0;
  private readonly geometry: TrackerGeometry;

  constructor(
    readonly assetId: string,
    private readonly c: Readonly<TrackerConfig>,
    private readonly location: { latitude: number; longitude: number; elevation: number },
  ) {
    this.geometry = { axisAzimuth: c.axisAzimuthDeg, axisTilt: c.axisTiltDeg, maxAngle: c.maxAngleDeg, gcr: c.backtrack ? c.gcr : 0 };
  }

  /** The points this monitor reads. */
  points(): string[] {
    return [this.c.anglePoint, this.c.statusPoint, this.c.modePoint].filter((p) => p !== '');
  }

  /** One processed sample of the tracker; returns true if it was one of ours. */
  feed(point: string, ts: number, v: unknown, q: Quality): boolean {
    const s = { ts, v, q };
    if (point === this.c.statusPoint) this.status = newer(this.status, s);
    else if (point === this.c.modePoint) this.mode = newer(this.mode, s);
    else if (point === this.c.anglePoint) {
      if (this.angle && ts <= this.angle.ts) return true;
      this.angle = s;
      if (GOOD.has(q) && typeof v === 'number' && Number.isFinite(v) && this.notTrackingReason(ts) === null) {
        const ideal = this.ideal(ts);
        if (ideal.sunUp) {
          this.absSum += Math.abs(v - ideal.angle);
          this.absN++;
        }
      }
    } else return false;
    return true;
  }

  /** The ideal rotation at `ts`, degrees (refraction-corrected sun: the light's direction). */
  ideal(ts: number): { angle: number; sunUp: boolean; backtracking: boolean; zenith: number; azimuth: number } {
    const sun = solarPosition(ts, this.location);
    const r = trackerRotation(sun.zenith, sun.azimuth, this.geometry);
    return { angle: r.angle, sunUp: r.sunUp, backtracking: r.backtracking, zenith: sun.zenith, azimuth: sun.azimuth };
  }

  private notTrackingReason(at: number): 'stowed' | 'not_tracking_mode' | null {
    void at;
    const st = this.status;
    if (st && typeof st.v === 'string' && st.v !== '') {
      const bits = st.v.split('|');
      if (this.c.stowBits.some((b) => bits.includes(b))) return 'stowed';
    }
    const m = this.mode;
    if (this.c.modePoint !== '' && m && typeof m.v === 'number' && !this.c.trackingModes.includes(m.v)) return 'not_tracking_mode';
    return null;
  }

  /**
   * Forget the interval's samples: after a store replay, whose samples span the day and would make
   * the first evaluation judge the day's mean instead of the row's position now.
   */
  resetInterval(): void {
    this.absSum = 0;
    this.absN = 0;
  }

  /** The figure now; resets the interval's mean. */
  evaluate(now: number, maxAgeMs: number): TrackerFigure {
    const meanAbs = this.absN > 0 ? round(this.absSum / this.absN) : null;
    const samples = this.absN;
    this.absSum = 0;
    this.absN = 0;
    const a = this.angle;
    if (!a || !GOOD.has(a.q) || typeof a.v !== 'number' || !Number.isFinite(a.v)) return nil('missing_angle', {});
    if (now - a.ts > maxAgeMs) return nil('stale_angle', { actualDeg: a.v, ageMs: now - a.ts });
    const why = this.notTrackingReason(a.ts);
    if (why) return nil(why, { actualDeg: a.v, status: this.status?.v ?? null, mode: this.mode?.v ?? null });
    const ideal = this.ideal(a.ts);
    if (!ideal.sunUp) return nil('night', { actualDeg: a.v, idealDeg: round(ideal.angle) });
    const dev = a.v - ideal.angle;
    return {
      value: round(dev),
      reason: null,
      details: {
        actualDeg: a.v,
        idealDeg: round(ideal.angle),
        backtracking: ideal.backtracking,
        sunZenithDeg: round(ideal.zenith),
        sunAzimuthDeg: round(ideal.azimuth),
        sampleTs: a.ts,
        meanAbsDeg: meanAbs,
        samples,
      },
    };
  }
}

function newer(prev: Sample | undefined, s: Sample): Sample {
  return prev && prev.ts > s.ts ? prev : s;
}

function nil(reason: TrackerNullReason, details: Record<string, unknown>): TrackerFigure {
  return { value: null, reason, details: { reason, ...details } };
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
