/**
 * From an `iv_scan` ControlResult's curve to the `iv_curve` figure. The curve's checks and its
 * analysis (Isc, Voc, Pmp, fill factor, resistances, classification) are iv.ts's; this file only
 * checks that the result carries a curve at all and shapes the figure: value = Pmp in W, the rest
 * in details, null with a reason when there is no usable curve.
 */
import type { AnalyticsConfig } from './config';

export interface IvFigure {
  value: number | null;
  u?: string;
  details: Record<string, unknown>;
}

interface CurveData {
  v: number[];
  i: number[];
  irradiance?: number;
  temperature?: number;
}

function isCurve(d: unknown): d is CurveData {
  if (typeof d !== 'object' || d === null) return false;
  const c = d as Record<string, unknown>;
  return Array.isArray(c['v']) && Array.isArray(c['i']) && c['v'].length === c['i'].length && c['v'].length >= 3 && [...c['v'], ...c['i']].every((x) => typeof x === 'number' && Number.isFinite(x));
}

export function analyseCurve(data: unknown, c: Readonly<AnalyticsConfig>, assetId: string, string: number): IvFigure {
  void c;
  void assetId;
  void string;
  if (!isCurve(data)) return { value: null, details: { reason: 'no_curve' } };
  let pmp = 0;
  let at = 0;
  for (let k = 0; k < data.v.length; k++) {
    const p = data.v[k]! * data.i[k]!;
    if (p > pmp) {
      pmp = p;
      at = k;
    }
  }
  return {
    value: Math.round(pmp * 10) / 10,
    u: 'W',
    details: { points: data.v.length, vmp: data.v[at], imp: data.i[at], ...(data.irradiance !== undefined ? { irradiance: data.irradiance } : {}), ...(data.temperature !== undefined ? { temperature: data.temperature } : {}) },
  };
}
