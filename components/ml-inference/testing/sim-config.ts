/**
 * MLInference's configuration for the site simulator's plant (scripts/simulator): what the demo
 * (`npm start`) deploys and test/e2e/ml-inference.test.ts runs with. Every inverter is rated
 * inverterRatedW (its AC rating: the window features are fractions of it) and has
 * stringsPerInverter model 160 modules; the one weather station and the one tracker are the
 * plant's; the location and the tracker's rotation limit are the plant's, so the sun elevation and
 * the clear sky MLInference computes are the ones the simulated plant sees. The point names are the
 * defaults (the adapter's SunSpec 103/160 names, the simulator's register map names).
 */
import { PLANT_DEFAULTS, type PlantOptions } from '../../../scripts/simulator/plant';
import type { SimulatedDevice } from '../../../scripts/simulator/site';
import type { InverterMlConfig, MlInferenceConfig } from '../config';
import { ML_INFERENCE_DEFAULTS } from '../config';

export type SimulatorMlInferenceConfig = Pick<MlInferenceConfig, 'latitude' | 'longitude' | 'trackerLimitDeg' | 'inverters' | 'modules' | 'site'>;

export function simulatorMlInferenceConfig(devices: readonly SimulatedDevice[], plant: Partial<PlantOptions> = {}): SimulatorMlInferenceConfig {
  const o = { ...PLANT_DEFAULTS, ...plant };
  const inverters: Record<string, InverterMlConfig> = {};
  for (const d of devices) if (d.kind === 'inverter') inverters[d.assetId] = { ratedW: o.inverterRatedW };
  return {
    latitude: o.latitude,
    longitude: o.longitude,
    trackerLimitDeg: o.trackerLimitDeg,
    inverters,
    modules: o.stringsPerInverter,
    site: {
      ...ML_INFERENCE_DEFAULTS.site,
      weatherStation: devices.find((d) => d.kind === 'weather')?.assetId ?? '',
      tracker: devices.find((d) => d.kind === 'tracker')?.assetId ?? '',
    },
  };
}
