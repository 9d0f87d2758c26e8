/**
 * com.dcmms.edge.Analytics configuration: one schema, one defaults object (docs/conventions.md
 * "Configuration"); the recipe's DefaultConfiguration equals ANALYTICS_DEFAULTS (a test checks).
 * What each key means and why the defaults are what they are: docs/analytics-component.md.
 *
 * The plant is described per asset: inverters (P_STC, γ, which weather station and combiner feed
 * them), weather stations (which points are POA, temperatures, wind), trackers (geometry and which
 * points say the actual angle and stow). The defaults describe no plant (maps merge key by key, so
 * a default asset could never be removed by a site); the demo deploys the simulator's plant
 * (testing/sim-config.ts), a site its own.
 */
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, type BaseConfig, type ConfigSpec, type JsonSchema } from '../lib/config';
import { ConfigError } from '../lib/errors';

export interface WeatherStationConfig {
  /** Plane-of-array irradiance, W/m² (a clean reference cell or pyranometer in the array's plane). */
  poaPoint: string;
  ambientPoint: string;
  /** Back-of-module temperature, °C; empty: cell temperature from ambient, irradiance and wind (Sandia). */
  modulePoint: string;
  windPoint: string;
}

export interface InverterConfig {
  /** DC nameplate at STC, kWp. */
  pStcKw: number;
  /** Power temperature coefficient, 1/K (negative). */
  gammaPerK: number;
  /** Asset id of the weather station (a key of `weatherStations`) whose POA is this inverter's. */
  weatherStation: string;
  /** Asset id of the combiner box of its strings ('' none: string currents from model 160). */
  combiner: string;
  /** Tracker (a key of `trackers`) carrying its modules ('' fixed tilt). */
  tracker: string;
  /** AC rating, kW (0 or absent: unknown): minutes near it are clipping, not soiling. */
  acRatingKw?: number;
  /** Cost of cleaning this inverter's array (absent: the plant's cleaningCost shared by P_STC). */
  cleaningCost?: number;
}

export interface TrackerConfig {
  /** Azimuth of the rotation axis, degrees from north (180: a north-south axis, the usual). */
  axisAzimuthDeg: number;
  axisTiltDeg: number;
  maxAngleDeg: number;
  /** Ground coverage ratio (backtracking); 0 = true tracking, no backtracking. */
  gcr: number;
  backtrack: boolean;
  /** The controller's measured rotation, degrees (positive = toward west for a north-south axis). */
  anglePoint: string;
  /** A bitfield point whose set bits name the controller's state ('' none). */
  statusPoint: string;
  /** Bits of `statusPoint` in which the row is not tracking on purpose (stow, wind stow): not a deviation. */
  stowBits: string[];
  /** Point with the operating mode ('' none) and the values that mean "tracking the sun". */
  modePoint: string;
  trackingModes: number[];
}

export interface Thresholds {
  /** Irradiance below which PR and availability intervals do not count, W/m² (IEC 61724-1 uses 50). */
  minPoaWm2: number;
  /** `low_pr`: the rolling PR (percent) below this for `lowPrForMs`; clears at or above `lowPrBelow + lowPrHysteresis`. */
  lowPrBelow: number;
  lowPrHysteresis: number;
  lowPrForMs: number;
  /** `tracker_misalignment`: |actual - ideal| above this many degrees for `trackerForMs`. */
  trackerDeviationDeg: number;
  trackerForMs: number;
  /** String imbalance detector: a string below this fraction of its peers' median... */
  stringFraction: number;
  /** ...for this long, with POA above this. */
  stringForMs: number;
  stringMinPoaWm2: number;
  /** `soiling_loss`: the day's soiling ratio (percent, 100 = clean) below this while cleaning pays. */
  soilingRatioBelow: number;
  /** `low_health`: health score below this (0..100). */
  lowHealthBelow: number;
}

/** A string's modules and wiring (iv.ts IvStringConfig): the expected curve a scan is compared with. */
export interface IvStringModel {
  module: { iscA: number; vocV: number; impA: number; vmpV: number; cellsInSeries: number; alphaIscPctPerK: number; betaVocPctPerK?: number; idealityFactor?: number; bypassDiodes?: number };
  layout: { modulesInSeries: number; stringsInParallel?: number };
}

export interface IvScanConfig {
  /** Local times (HH:MM, site time zone) at which every configured string is scanned; [] none. */
  times: string[];
  /** Strings scanned, per combiner or inverter asset: 1-based string numbers. */
  strings: Record<string, number[]>;
  /** How long the adapter may take for one scan (the command expires after it). */
  timeoutMs: number;
  /** The strings' modules and wiring, per scanned asset (a combiner's strings alike); absent: figures without an expected curve. */
  models: Record<string, IvStringModel>;
}

export interface AnalyticsConfig extends BaseConfig {
  /** The Processor's store (read-only); empty: DCMMS_PROCESSOR_STORE, set by the recipe. */
  storePath: string;
  /** Analytics's own SQLite file (alarm journal, detector state); relative to its work folder. */
  dbPath: string;
  /** Results are computed and published this often. */
  evaluateIntervalMs: number;
  /** Rolling window of the live PR, availability and soiling figures. */
  windowMs: number;
  latitude: number;
  longitude: number;
  elevationM: number;
  /** IANA time zone: daily figures are local days. */
  timeZone: string;
  weatherStations: Record<string, WeatherStationConfig>;
  inverters: Record<string, InverterConfig>;
  trackers: Record<string, TrackerConfig>;
  /** Processed-telemetry point names of the inverters and combiners. */
  powerPoint: string;
  energyPoint: string;
  /** Operating state (SunSpec 103 `St`): a throttled or starting inverter is available, not producing. */
  statePoint: string;
  /** Inverter temperature for the health score's thermal stress. */
  temperaturePoint: string;
  thermalLimitC: number;
  alarmThresholds: Thresholds;
  /** Overrides of thresholds for single assets (asset id -> some threshold keys). */
  assetThresholds: Record<string, Partial<Thresholds>>;
  /** Energy price (currency per kWh) and the cost of one cleaning of the whole plant (currency). */
  energyPrice: number;
  cleaningCost: number;
  currency: string;
  /**
   * Soiling ratio of a clean array as this plant measures it (AC output against the clean
   * reference cell includes inverter and wiring losses): measured ratios are divided by it, so a
   * clean array reads 100 %. Set it from the days right after a cleaning.
   */
  soilingBaselineRatio: number;
  /** Days until the next natural cleaning (rain) assumed by the cleaning advice. */
  cleaningHorizonDays: number;
  /** The day's soiling ratio needs this much strong light (POA >= 500 W/m2) with data, ms. */
  soilingMinUsedMs: number;
  ivScan: IvScanConfig;
  alarmJournalRetentionMs: number;
  alarmSnapshotIntervalMs: number;
}

const DAY = 86_400_000;
const ID = { type: 'string', pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$' } as const;
const POINT = { type: 'string', maxLength: 128 } as const;
const ASSETS = (item: JsonSchema): JsonSchema => ({ type: 'object', maxProperties: 2000, propertyNames: ID, additionalProperties: item });

const THRESHOLD_PROPS = {
  minPoaWm2: { type: 'number', minimum: 0, maximum: 1000 },
  lowPrBelow: { type: 'number', minimum: 0, maximum: 150 },
  lowPrHysteresis: { type: 'number', minimum: 0, maximum: 50 },
  lowPrForMs: { type: 'integer', minimum: 0, maximum: DAY },
  trackerDeviationDeg: { type: 'number', exclusiveMinimum: 0, maximum: 90 },
  trackerForMs: { type: 'integer', minimum: 0, maximum: DAY },
  stringFraction: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
  stringForMs: { type: 'integer', minimum: 0, maximum: DAY },
  stringMinPoaWm2: { type: 'number', minimum: 0, maximum: 1500 },
  soilingRatioBelow: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
  lowHealthBelow: { type: 'number', minimum: 0, maximum: 100 },
} as const;

export const ANALYTICS_CONFIG_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'siteId', 'metricsIntervalMs', 'logLevel', 'storePath', 'dbPath', 'evaluateIntervalMs', 'windowMs', 'latitude', 'longitude', 'elevationM', 'timeZone',
    'weatherStations', 'inverters', 'trackers', 'powerPoint', 'energyPoint', 'statePoint', 'temperaturePoint', 'thermalLimitC',
    'alarmThresholds', 'assetThresholds', 'energyPrice', 'cleaningCost', 'currency', 'soilingBaselineRatio', 'cleaningHorizonDays', 'soilingMinUsedMs', 'ivScan', 'alarmJournalRetentionMs', 'alarmSnapshotIntervalMs',
  ],
  properties: {
    ...BASE_CONFIG_PROPERTIES,
    storePath: { type: 'string', maxLength: 1024 },
    dbPath: { type: 'string', minLength: 1, maxLength: 1024 },
    evaluateIntervalMs: { type: 'integer', minimum: 1000, maximum: 3600000 },
    windowMs: { type: 'integer', minimum: 60000, maximum: 6 * 3600000 },
    latitude: { type: 'number', minimum: -90, maximum: 90 },
    longitude: { type: 'number', minimum: -180, maximum: 180 },
    elevationM: { type: 'number', minimum: -500, maximum: 9000 },
    timeZone: { type: 'string', minLength: 1, maxLength: 64 },
    weatherStations: ASSETS({
      type: 'object',
      additionalProperties: false,
      required: ['poaPoint', 'ambientPoint', 'modulePoint', 'windPoint'],
      properties: { poaPoint: { ...POINT, minLength: 1 }, ambientPoint: POINT, modulePoint: POINT, windPoint: POINT },
    }),
    inverters: ASSETS({
      type: 'object',
      additionalProperties: false,
      required: ['pStcKw', 'gammaPerK', 'weatherStation', 'combiner', 'tracker'],
      properties: {
        pStcKw: { type: 'number', exclusiveMinimum: 0, maximum: 1000000 },
        gammaPerK: { type: 'number', minimum: -0.02, maximum: 0 },
        weatherStation: { type: 'string', maxLength: 64 },
        combiner: { type: 'string', maxLength: 64 },
        tracker: { type: 'string', maxLength: 64 },
        acRatingKw: { type: 'number', minimum: 0, maximum: 1000000 },
        cleaningCost: { type: 'number', minimum: 0, maximum: 1e9 },
      },
    }),
    trackers: ASSETS({
      type: 'object',
      additionalProperties: false,
      required: ['axisAzimuthDeg', 'axisTiltDeg', 'maxAngleDeg', 'gcr', 'backtrack', 'anglePoint', 'statusPoint', 'stowBits', 'modePoint', 'trackingModes'],
      properties: {
        axisAzimuthDeg: { type: 'number', minimum: 0, exclusiveMaximum: 360 },
        axisTiltDeg: { type: 'number', minimum: 0, maximum: 45 },
        maxAngleDeg: { type: 'number', exclusiveMinimum: 0, maximum: 90 },
        gcr: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
        backtrack: { type: 'boolean' },
        anglePoint: { ...POINT, minLength: 1 },
        statusPoint: POINT,
        stowBits: { type: 'array', maxItems: 16, items: { type: 'string', minLength: 1, maxLength: 64 } },
        modePoint: POINT,
        trackingModes: { type: 'array', maxItems: 16, items: { type: 'integer' } },
      },
    }),
    powerPoint: { ...POINT, minLength: 1 },
    energyPoint: POINT,
    statePoint: POINT,
    temperaturePoint: POINT,
    thermalLimitC: { type: 'number', minimum: 0, maximum: 150 },
    alarmThresholds: { type: 'object', additionalProperties: false, required: Object.keys(THRESHOLD_PROPS), properties: THRESHOLD_PROPS },
    assetThresholds: ASSETS({ type: 'object', additionalProperties: false, properties: THRESHOLD_PROPS }),
    energyPrice: { type: 'number', minimum: 0, maximum: 100 },
    cleaningCost: { type: 'number', minimum: 0, maximum: 1e9 },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    soilingBaselineRatio: { type: 'number', minimum: 0.5, maximum: 1.5 },
    cleaningHorizonDays: { type: 'number', exclusiveMinimum: 0, maximum: 365 },
    soilingMinUsedMs: { type: 'integer', minimum: 60000, maximum: 86400000 },
    ivScan: {
      type: 'object',
      additionalProperties: false,
      required: ['times', 'strings', 'timeoutMs', 'models'],
      properties: {
        models: ASSETS({
          type: 'object',
          additionalProperties: false,
          required: ['module', 'layout'],
          properties: {
            module: {
              type: 'object',
              additionalProperties: false,
              required: ['iscA', 'vocV', 'impA', 'vmpV', 'cellsInSeries', 'alphaIscPctPerK'],
              properties: {
                iscA: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
                vocV: { type: 'number', exclusiveMinimum: 0, maximum: 200 },
                impA: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
                vmpV: { type: 'number', exclusiveMinimum: 0, maximum: 200 },
                cellsInSeries: { type: 'integer', minimum: 1, maximum: 300 },
                alphaIscPctPerK: { type: 'number', minimum: 0, maximum: 1 },
                betaVocPctPerK: { type: 'number', minimum: -1, maximum: 0 },
                idealityFactor: { type: 'number', minimum: 0.5, maximum: 3 },
                bypassDiodes: { type: 'integer', minimum: 1, maximum: 12 },
              },
            },
            layout: {
              type: 'object',
              additionalProperties: false,
              required: ['modulesInSeries'],
              properties: { modulesInSeries: { type: 'integer', minimum: 1, maximum: 100 }, stringsInParallel: { type: 'integer', minimum: 1, maximum: 100 } },
            },
          },
        }),
        times: { type: 'array', maxItems: 24, uniqueItems: true, items: { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' } },
        strings: ASSETS({ type: 'array', maxItems: 64, uniqueItems: true, items: { type: 'integer', minimum: 1, maximum: 64 } }),
        timeoutMs: { type: 'integer', minimum: 1000, maximum: 600000 },
      },
    },
    alarmJournalRetentionMs: { type: 'integer', minimum: 3600000, maximum: 90 * DAY },
    alarmSnapshotIntervalMs: { type: 'integer', minimum: 1000, maximum: 3600000 },
  },
};

export const THRESHOLD_DEFAULTS: Thresholds = {
  minPoaWm2: 50,
  lowPrBelow: 80,
  lowPrHysteresis: 5,
  lowPrForMs: 1800000,
  trackerDeviationDeg: 5,
  trackerForMs: 600000,
  stringFraction: 0.8,
  stringForMs: 900000,
  stringMinPoaWm2: 200,
  soilingRatioBelow: 95,
  lowHealthBelow: 60,
};

export const ANALYTICS_DEFAULTS: AnalyticsConfig = {
  ...BASE_DEFAULTS,
  storePath: '',
  dbPath: 'analytics.db',
  evaluateIntervalMs: 60000,
  windowMs: 900000,
  latitude: 37,
  longitude: -2.5,
  elevationM: 0,
  timeZone: 'UTC',
  // Empty: a deployment's maps merge key by key into these (Greengrass merge semantics), so an
  // asset listed here would stay in every site's configuration. Each site describes its plant.
  weatherStations: {},
  inverters: {},
  trackers: {},
  powerPoint: '103.W',
  energyPoint: '103.WH',
  statePoint: '103.St',
  temperaturePoint: '103.TmpSnk',
  thermalLimitC: 70,
  alarmThresholds: THRESHOLD_DEFAULTS,
  assetThresholds: {},
  energyPrice: 0.1,
  cleaningCost: 300,
  currency: 'EUR',
  soilingBaselineRatio: 1,
  cleaningHorizonDays: 30,
  soilingMinUsedMs: 1800000,
  ivScan: { times: [], strings: {}, timeoutMs: 30000, models: {} },
  alarmJournalRetentionMs: 7 * DAY,
  alarmSnapshotIntervalMs: 60000,
};

/**
 * Checks the schema cannot express, each naming the key: the time zone must be one Intl knows; an
 * inverter's weather station and tracker must be configured; IV scan assets must be inverters or
 * their combiners; a tracker's geometry must allow tracking at all.
 */
export function checkAnalyticsConfig(c: Readonly<AnalyticsConfig>): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: c.timeZone });
  } catch {
    throw new ConfigError('timeZone', `timeZone ${JSON.stringify(c.timeZone)} is not an IANA time zone this Node.js knows (e.g. "Europe/Madrid", "UTC")`);
  }
  const stations = Object.keys(c.weatherStations);
  for (const [id, inv] of Object.entries(c.inverters)) {
    if (!(inv.weatherStation in c.weatherStations)) {
      throw new ConfigError(`inverters.${id}.weatherStation`, `inverters.${id}.weatherStation ${JSON.stringify(inv.weatherStation)} is not a configured weather station; allowed: ${stations.length ? stations.map((s) => JSON.stringify(s)).join(', ') : '(none configured in weatherStations)'}`);
    }
    if (inv.tracker !== '' && !(inv.tracker in c.trackers)) {
      throw new ConfigError(`inverters.${id}.tracker`, `inverters.${id}.tracker ${JSON.stringify(inv.tracker)} is not a configured tracker; allowed: "" (fixed tilt) or ${Object.keys(c.trackers).map((s) => JSON.stringify(s)).join(', ') || '(none configured in trackers)'}`);
    }
    if (inv.combiner !== '' && (inv.combiner in c.inverters || inv.combiner in c.weatherStations)) {
      throw new ConfigError(`inverters.${id}.combiner`, `inverters.${id}.combiner ${JSON.stringify(inv.combiner)} is configured as another kind of asset; allowed: a combiner box's asset id or ""`);
    }
  }
  const scannable = new Set([...Object.keys(c.inverters), ...Object.values(c.inverters).map((i) => i.combiner).filter((x) => x !== '')]);
  for (const asset of Object.keys(c.ivScan.strings)) {
    if (!scannable.has(asset)) throw new ConfigError(`ivScan.strings.${asset}`, `ivScan.strings.${asset}: not a configured inverter or an inverter's combiner; allowed: ${[...scannable].join(', ') || '(none)'}`);
  }
  for (const [asset, m] of Object.entries(c.ivScan.models)) {
    if (!scannable.has(asset)) throw new ConfigError(`ivScan.models.${asset}`, `ivScan.models.${asset}: not a configured inverter or an inverter's combiner; allowed: ${[...scannable].join(', ') || '(none)'}`);
    const d = m.module;
    if (!(d.impA < d.iscA && d.vmpV < d.vocV)) throw new ConfigError(`ivScan.models.${asset}.module`, `ivScan.models.${asset}.module: a datasheet needs impA < iscA and vmpV < vocV (got Imp ${d.impA}, Isc ${d.iscA}, Vmp ${d.vmpV}, Voc ${d.vocV})`);
  }
  if (c.ivScan.times.length > 0 && Object.keys(c.ivScan.strings).length === 0) {
    throw new ConfigError('ivScan.strings', 'ivScan.times is set but ivScan.strings names no string to scan; allowed: an object of asset id -> [string numbers]');
  }
  for (const [id, t] of Object.entries(c.trackers)) {
    if (t.trackingModes.length === 0 && t.modePoint !== '') {
      throw new ConfigError(`trackers.${id}.trackingModes`, `trackers.${id}.trackingModes is empty while modePoint is set: the row would never be judged; allowed: the mode values in which it tracks the sun (e.g. [0])`);
    }
  }
  for (const [id, t] of Object.entries(c.assetThresholds)) {
    if (!(id in c.inverters) && !(id in c.trackers)) throw new ConfigError(`assetThresholds.${id}`, `assetThresholds.${id}: not a configured inverter or tracker; allowed: ${[...Object.keys(c.inverters), ...Object.keys(c.trackers)].join(', ')}`);
    void t;
  }
  if (c.windowMs < c.evaluateIntervalMs) throw new ConfigError('windowMs', `windowMs ${c.windowMs} is shorter than evaluateIntervalMs ${c.evaluateIntervalMs}: samples between evaluations would be missed; allowed: >= evaluateIntervalMs`);
}

/** The thresholds in force for one asset. */
export function thresholdsFor(c: Readonly<AnalyticsConfig>, assetId: string): Thresholds {
  const o = c.assetThresholds[assetId];
  return o ? { ...c.alarmThresholds, ...o } : c.alarmThresholds;
}

export const analyticsConfigSpec: ConfigSpec<AnalyticsConfig> = { schema: ANALYTICS_CONFIG_SCHEMA, defaults: ANALYTICS_DEFAULTS, check: checkAnalyticsConfig };
