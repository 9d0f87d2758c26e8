/**
 * Analytics's configuration for the site simulator's plant (scripts/simulator): what the demo
 * (`npm start`) deploys and the integration tests run with. Every inverter is rated
 * inverterRatedW x dcAcRatio at STC and reads the one weather station's clean reference cell
 * (plane of array, on the tracker); every row is carried by the one tracker controller, a
 * north-south axis with the simulator's rotation limit and ground coverage ratio; each inverter's
 * strings are in its combiner box. The location is the plant's.
 */
import { SIM_LAYOUT, SIM_MODULE } from '../../../scripts/simulator/combiner';
import { PLANT_DEFAULTS, type PlantOptions } from '../../../scripts/simulator/plant';
import type { SimulatedDevice } from '../../../scripts/simulator/site';
import type { AnalyticsConfig, InverterConfig, IvStringModel, TrackerConfig, WeatherStationConfig } from '../config';

export type SimulatorAnalyticsConfig = Pick<AnalyticsConfig, 'latitude' | 'longitude' | 'timeZone' | 'weatherStations' | 'inverters' | 'trackers'> & { ivScan: Pick<AnalyticsConfig['ivScan'], 'models'> & Partial<AnalyticsConfig['ivScan']> };

export function simulatorAnalyticsConfig(devices: readonly SimulatedDevice[], plant: Partial<PlantOptions> = {}): SimulatorAnalyticsConfig {
  const o = { ...PLANT_DEFAULTS, ...plant };
  const gcr = (o as PlantOptions & { trackerGcr?: number }).trackerGcr ?? 0.35;
  const weatherStations: Record<string, WeatherStationConfig> = {};
  const trackers: Record<string, TrackerConfig> = {};
  const inverters: Record<string, InverterConfig> = {};
  for (const d of devices) {
    if (d.kind === 'weather') weatherStations[d.assetId] = { poaPoint: 'poa', ambientPoint: 'ambientTemp', modulePoint: 'moduleTemp', windPoint: 'windSpeed' };
    if (d.kind === 'tracker') {
      trackers[d.assetId] = {
        axisAzimuthDeg: 180,
        axisTiltDeg: 0,
        maxAngleDeg: o.trackerLimitDeg,
        gcr,
        backtrack: gcr > 0,
        anglePoint: 'actualAngle',
        statusPoint: 'status',
        stowBits: ['stowed', 'windStow'],
        modePoint: 'mode',
        // The controller's modes: 0 auto (tracking), 1 manual, 2 stow.
        trackingModes: [0],
      };
    }
  }
  const station = Object.keys(weatherStations)[0] ?? '';
  const tracker = Object.keys(trackers)[0] ?? '';
  const combiners = devices.filter((d) => d.kind === 'combiner');
  devices
    .filter((d) => d.kind === 'inverter')
    .forEach((d, i) => {
      inverters[d.assetId] = {
        pStcKw: (o.inverterRatedW * o.dcAcRatio) / 1000,
        gammaPerK: -0.0035,
        weatherStation: station,
        combiner: combiners[i]?.assetId ?? '',
        tracker,
        acRatingKw: o.inverterRatedW / 1000,
      };
    });
  // Every combiner box has an IV tracer (its strings: the simulator's module, 15 in series, 3 in parallel).
  const models: Record<string, IvStringModel> = {};
  for (const cb of combiners) models[cb.assetId] = { module: { ...SIM_MODULE }, layout: { ...SIM_LAYOUT } };
  return { latitude: o.latitude, longitude: o.longitude, timeZone: 'UTC', weatherStations, inverters, trackers, ivScan: { times: [], strings: {}, timeoutMs: 30000, models } };
}
