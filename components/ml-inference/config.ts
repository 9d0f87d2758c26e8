/**
 * com.dcmms.edge.MLInference configuration: one schema, one defaults object; the recipe's
 * DefaultConfiguration equals ML_INFERENCE_DEFAULTS (a test checks). What each key means and why
 * the defaults are what they are: docs/ml-inference.md "Configuration".
 *
 * The plant is named by asset id and processed-telemetry point names: the inverters the fault and
 * anomaly models score (with their AC rating, which scales the features), the one weather station
 * and the one tracker whose points every inverter's window shares (the models were trained on a
 * plant with one of each). The defaults describe no plant; the demo deploys the simulator's
 * (testing/sim-config.ts).
 */
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, type BaseConfig, type ConfigSpec, type JsonSchema } from '../lib/config';
import { ConfigError } from '../lib/errors';

export interface InverterMlConfig {
  /** AC rating (SunSpec 120 WRtg), W: the window features are fractions of it. */
  ratedW: number;
}

/** Processed-telemetry point names of an inverter (SunSpec models 103 and 160 as the adapter names them). */
export interface InverterPoints {
  W: string;
  DCW: string;
  DCV: string;
  TmpSnk: string;
  TmpCab: string;
  /** Operating state: FAULT counts towards st_fault_frac. */
  St: string;
  /** Event bitfield ("GROUND_FAULT|OVER_TEMP"). */
  Evt1: string;
  /** Model 160 module points: `{n}` is the 1-based module (MPPT input) number. */
  moduleTmp: string;
  moduleDCA: string;
}

export interface SiteAssets {
  weatherStation: string;
  ghiPoint: string;
  poaPoint: string;
  ambientPoint: string;
  modulePoint: string;
  windPoint: string;
  tracker: string;
  trackerActualPoint: string;
  trackerTargetPoint: string;
}

export interface ClassifierModelConfig {
  enabled: boolean;
  /** One inference per inverter this often (on the minute boundary). */
  intervalMs: number;
  /** Alarm when the score is past `raise` for `forCount` inferences in a row; clears past `clear`. */
  raise: number;
  clear: number;
  forCount: number;
}

export interface ForecastModelConfig {
  enabled: boolean;
  intervalMs: number;
}

export interface MlInferenceConfig extends BaseConfig {
  /** The Processor's store (read-only); empty: DCMMS_PROCESSOR_STORE, set by the recipe. */
  storePath: string;
  /** Folder with fault.onnx, anomaly.onnx, forecast.onnx; empty: DCMMS_MODELS_DIR (the models component's artifacts). */
  modelDir: string;
  /** How often the model folder is looked at for new files. */
  modelCheckIntervalMs: number;
  /** MLInference's own SQLite file (alarm journal, last inputs); relative to its work folder. */
  dbPath: string;
  latitude: number;
  longitude: number;
  /** The tracker's rotation limit: the clear-sky POA the forecast takes is for an ideal tracker with it. */
  trackerLimitDeg: number;
  inverters: Record<string, InverterMlConfig>;
  inverterPoints: InverterPoints;
  /** Model 160 modules (strings) per inverter the features average. */
  modules: number;
  site: SiteAssets;
  fault: ClassifierModelConfig;
  anomaly: ClassifierModelConfig;
  forecast: ForecastModelConfig;
  alarmJournalRetentionMs: number;
  alarmSnapshotIntervalMs: number;
}

const ASSET = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } as const;
const POINT = { type: 'string', minLength: 1, maxLength: 128 } as const;
const INTERVAL = { type: 'integer', minimum: 1000, maximum: 86_400_000 } as const;

const classifierSchema = (lo: number, hi: number): JsonSchema => ({
  type: 'object',
  additionalProperties: false,
  required: ['enabled', 'intervalMs', 'raise', 'clear', 'forCount'],
  properties: {
    enabled: { type: 'boolean' },
    intervalMs: { ...INTERVAL, minimum: 60000 },
    raise: { type: 'number', minimum: lo, maximum: hi },
    clear: { type: 'number', minimum: lo, maximum: hi },
    forCount: { type: 'integer', minimum: 1, maximum: 1000 },
  },
});

export const ML_INFERENCE_CONFIG_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'siteId', 'metricsIntervalMs', 'logLevel', 'storePath', 'modelDir', 'modelCheckIntervalMs', 'dbPath', 'latitude', 'longitude', 'trackerLimitDeg',
    'inverters', 'inverterPoints', 'modules', 'site', 'fault', 'anomaly', 'forecast', 'alarmJournalRetentionMs', 'alarmSnapshotIntervalMs',
  ],
  properties: {
    ...BASE_CONFIG_PROPERTIES,
    storePath: { type: 'string', maxLength: 4096 },
    modelDir: { type: 'string', maxLength: 4096 },
    modelCheckIntervalMs: INTERVAL,
    dbPath: { type: 'string', minLength: 1, maxLength: 4096 },
    latitude: { type: 'number', minimum: -90, maximum: 90 },
    longitude: { type: 'number', minimum: -180, maximum: 180 },
    trackerLimitDeg: { type: 'number', minimum: 0, maximum: 90 },
    inverters: {
      type: 'object',
      maxProperties: 500,
      propertyNames: ASSET,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['ratedW'],
        properties: { ratedW: { type: 'number', exclusiveMinimum: 0, maximum: 1e8 } },
      },
    },
    inverterPoints: {
      type: 'object',
      additionalProperties: false,
      required: ['W', 'DCW', 'DCV', 'TmpSnk', 'TmpCab', 'St', 'Evt1', 'moduleTmp', 'moduleDCA'],
      properties: {
        W: POINT, DCW: POINT, DCV: POINT, TmpSnk: POINT, TmpCab: POINT, St: POINT, Evt1: POINT,
        moduleTmp: { ...POINT, pattern: '\\{n\\}' },
        moduleDCA: { ...POINT, pattern: '\\{n\\}' },
      },
    },
    modules: { type: 'integer', minimum: 1, maximum: 64 },
    site: {
      type: 'object',
      additionalProperties: false,
      required: ['weatherStation', 'ghiPoint', 'poaPoint', 'ambientPoint', 'modulePoint', 'windPoint', 'tracker', 'trackerActualPoint', 'trackerTargetPoint'],
      properties: {
        weatherStation: { anyOf: [ASSET, { const: '' }] },
        ghiPoint: POINT, poaPoint: POINT, ambientPoint: POINT, modulePoint: POINT, windPoint: POINT,
        tracker: { anyOf: [ASSET, { const: '' }] },
        trackerActualPoint: POINT, trackerTargetPoint: POINT,
      },
    },
    // Fault: probability 0..1, high = a fault; anomaly: score -1..1, low = anomalous.
    fault: classifierSchema(0, 1),
    anomaly: classifierSchema(-1, 1),
    forecast: {
      type: 'object',
      additionalProperties: false,
      required: ['enabled', 'intervalMs'],
      properties: { enabled: { type: 'boolean' }, intervalMs: { ...INTERVAL, minimum: 60000 } },
    },
    alarmJournalRetentionMs: { type: 'integer', minimum: 3_600_000, maximum: 90 * 86_400_000 },
    alarmSnapshotIntervalMs: { type: 'integer', minimum: 1000, maximum: 3_600_000 },
  },
};

export const ML_INFERENCE_DEFAULTS: MlInferenceConfig = {
  ...BASE_DEFAULTS,
  storePath: '',
  modelDir: '',
  modelCheckIntervalMs: 30000,
  dbPath: 'ml-inference.db',
  latitude: 37,
  longitude: -2.5,
  trackerLimitDeg: 55,
  inverters: {},
  inverterPoints: {
    W: '103.W',
    DCW: '103.DCW',
    DCV: '103.DCV',
    TmpSnk: '103.TmpSnk',
    TmpCab: '103.TmpCab',
    St: '103.St',
    Evt1: '103.Evt1',
    moduleTmp: '160.module.{n}.Tmp',
    moduleDCA: '160.module.{n}.DCA',
  },
  modules: 4,
  site: {
    weatherStation: '',
    ghiPoint: 'ghi',
    poaPoint: 'poa',
    ambientPoint: 'ambientTemp',
    modulePoint: 'moduleTemp',
    windPoint: 'windSpeed',
    tracker: '',
    trackerActualPoint: 'actualAngle',
    trackerTargetPoint: 'targetAngle',
  },
  // Thresholds from the test split (models/metrics.json): normal windows score a fault probability
  // near 0 and an anomaly score around 0.2 to 0.36; a fault's median anomaly score is about 0.1.
  fault: { enabled: true, intervalMs: 60000, raise: 0.8, clear: 0.5, forCount: 3 },
  anomaly: { enabled: true, intervalMs: 60000, raise: 0, clear: 0.15, forCount: 3 },
  forecast: { enabled: true, intervalMs: 900000 },
  alarmJournalRetentionMs: 604800000,
  alarmSnapshotIntervalMs: 60000,
};

/** What the schema cannot say: hysteresis the right way round. */
function check(c: MlInferenceConfig): void {
  if (!(c.fault.clear < c.fault.raise)) throw new ConfigError('fault.clear', `fault.clear (${c.fault.clear}) must be below fault.raise (${c.fault.raise}): the probability must fall back past clear before a predicted_fault clears`);
  if (!(c.anomaly.clear > c.anomaly.raise)) throw new ConfigError('anomaly.clear', `anomaly.clear (${c.anomaly.clear}) must be above anomaly.raise (${c.anomaly.raise}): a low score raises, the score must rise back past clear to clear`);
  const n = Object.keys(c.inverters).length;
  if (n > 0 && c.site.weatherStation === '') throw new ConfigError('site.weatherStation', 'inverters are configured but site.weatherStation is empty; allowed: the asset id of the weather station whose POA, GHI, temperatures and wind the inverters see');
  for (const id of Object.keys(c.inverters)) {
    if (id === c.site.weatherStation || id === c.site.tracker) throw new ConfigError(`inverters.${id}`, `${id} is also the site's weather station or tracker; allowed: distinct asset ids`);
  }
}

export const mlInferenceConfigSpec: ConfigSpec<MlInferenceConfig> = { schema: ML_INFERENCE_CONFIG_SCHEMA, defaults: ML_INFERENCE_DEFAULTS, check };
