/**
 * From an `iv_scan` ControlResult's curve to the `iv_curve` figure (docs/analytics-component.md
 * "IV scans"). The curve's analysis is iv.ts's: figures (Isc, Voc, MPP, fill factor, resistances)
 * and, with the string's modules and wiring configured (`ivScan.models`), the expected curve at the
 * scan's irradiance and cell temperature and the classification. The irradiance and temperature
 * are the device's when it measured them, else the weather station's at the scan.
 *
 * Value: Pmp over the expected Pmp in percent when a model is configured, else the measured Pmp in
 * W (u says which); null with a reason when there is no usable curve.
 */
import type { ControlResultData } from '../lib/contract';
import { errorMessage } from '../lib/errors';
import type { AnalyticsConfig } from './config';
import { analyzeIvCurve, ivFeatures, type IvStringConfig } from './iv';

export interface IvFigure {
  value: number | null;
  u?: string;
  details: Record<string, unknown>;
}

const r3 = (x: number | null): number | null => (x === null ? null : Math.round(x * 1000) / 1000);
const roundAll = (o: object): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? r3(v) : v]));

export function analyseCurve(data: ControlResultData | undefined, c: Readonly<AnalyticsConfig>, assetId: string, conditions: { irradiance: number; temperature: number } | null): IvFigure {
  if (!data || data.kind !== 'iv_curve') return { value: null, details: { reason: 'no_curve' } };
  const curve = { v: data.v, i: data.i };
  const model = c.ivScan.models[assetId];
  const irradiance = data.irradiance ?? conditions?.irradiance;
  const temperature = data.temperature ?? conditions?.temperature;
  try {
    if (model && irradiance !== undefined && temperature !== undefined && irradiance > 0) {
      const a = analyzeIvCurve(curve, model as IvStringConfig, { irradiance, temperature });
      return {
        value: r3(a.ratios.pmp * 100),
        u: '%',
        details: { classification: a.classification, reasons: a.reasons, measured: roundAll(a.measured), expected: roundAll(a.expected), ratios: roundAll(a.ratios), irradiance: r3(irradiance), temperature: r3(temperature), points: data.v.length, conditionsFrom: data.irradiance !== undefined ? 'device' : 'weather_station' },
      };
    }
    const f = ivFeatures(curve);
    return { value: r3(f.pmpW), u: 'W', details: { measured: roundAll(f), points: data.v.length, classification: null, reason: model ? 'no_conditions' : 'no_string_model' } };
  } catch (err) {
    return { value: null, details: { reason: 'curve_invalid', message: errorMessage(err), points: data.v.length } };
  }
}
