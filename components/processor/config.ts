/**
 * com.dcmms.edge.Processor configuration: one schema, one defaults object (docs/conventions.md
 * "Configuration"). The recipe's DefaultConfiguration equals PROCESSOR_DEFAULTS (a test checks).
 *
 * Ranges follow dCMMS edge specification §3.2 `validate` (docs/specification.md: active power
 * -10..100 MW, DC voltage 0..1500 V), expressed in canonical units (W, V) after unit conversion
 * (§3.1 step 3). Alarm rules follow §3.2 `check_alarms` (over-temperature above 75 °C high;
 * irradiance below 200 W/m2 with temperature above 50 °C possible soiling, medium) plus SunSpec St
 * FAULT and Evt1 bits, communication loss and frozen power (docs/processor.md "Alarms"). Rule
 * semantics are checked beyond the schema in alarms/rules.ts (ConfigError naming the key).
 */
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, type BaseConfig, type ConfigSpec, type JsonSchema } from '../lib/config';
import { SEVERITIES, type Severity } from '../lib/contract';
import { compileRules } from './alarms/rules';

/** A range for points whose names match one of `points` (globs: `*` any run of characters, `?` one). */
export interface RangeRule {
  points: string[];
  /** Canonical units (after conversion). */
  min: number;
  max: number;
  /** `reject` drops the sample (as specification §3.2 does); `flag` keeps it with quality `uncertain`. */
  action: 'reject' | 'flag';
}

/** `v_canonical = v * factor + offset`, unit renamed to `to`. */
export interface UnitConversion {
  to: string;
  factor: number;
  offset: number;
}

export type AlarmKind = 'threshold' | 'all' | 'rate' | 'stale' | 'frozen' | 'state' | 'bits' | 'comm_loss';
export type Comparison = 'above' | 'below';

export interface AlarmCondition {
  point: string;
  op: Comparison;
  limit: number;
}

export interface BitAlarm {
  type: string;
  severity: Severity;
}

/** One alarm rule. Which fields apply depends on `kind` (alarms/rules.ts checks them). */
export interface AlarmRuleConfig {
  id: string;
  kind: AlarmKind;
  /** Alarm type (snake_case), the contract's `AlarmMessage.type`. Not used by `bits` (each bit names its own). */
  type: string;
  severity: Severity;
  /** Asset id globs the rule applies to; absent = every asset. */
  assets?: string[];
  /** Point name globs (threshold, rate, stale, frozen, state, bits). */
  points?: string[];
  op?: Comparison;
  limit?: number;
  /** Hysteresis: a `above` alarm clears below `limit - deadband` (and `below` above `limit + deadband`). */
  deadband?: number;
  /** The condition must hold this long (by sample time) before the alarm is raised. */
  onDelayMs?: number;
  /** The clear condition must hold this long before the alarm clears. */
  offDelayMs?: number;
  /** `all`: every condition true on the same asset's latest values. */
  conditions?: AlarmCondition[];
  /** `rate`: |dv/dt| in canonical units per second. */
  maxPerS?: number;
  /** `stale`: no sample for this long (gateway time). */
  maxAgeMs?: number;
  /** `frozen`: the value stayed within `tolerance` for this long while samples kept arriving. */
  maxUnchangedMs?: number;
  tolerance?: number;
  /** `frozen`: ignore values with |v| below this (a plant at night legitimately reads 0 W). */
  minAbs?: number;
  /** `state`: enum symbol names that mean the alarm (SunSpec St `FAULT`). */
  values?: string[];
  /** `bits`: bit name -> alarm (SunSpec Evt1 `GROUND_FAULT` -> ground_fault, critical). */
  bits?: Record<string, BitAlarm>;
  /** `comm_loss`: device states that raise it. */
  states?: string[];
  /** Re-publish a raised alarm (same alarmId, details.event `updated`) when its value moved this far past the last published one. */
  updateDelta?: number;
}

export interface ProcessorConfig extends BaseConfig {
  /** SQLite file of the raw store; relative paths are under the component's work folder. */
  storePath: string;
  /** A sample is durable at most this long after it arrived (the crash-loss window, docs/processor.md). */
  commitWindowMs: number;
  retentionMs: number;
  maxStoreBytes: number;
  minFreeBytes: number;
  storeSynchronous: 'FULL' | 'NORMAL';
  /** Messages above this (estimated JSON size) are rejected `message_too_large` (bad input, counted). */
  maxMessageBytes: number;
  /** Asset ids accepted besides those the adapters announce on their device status topic. */
  assets: string[];
  /** `reject` (default): telemetry of an asset neither configured nor announced is refused (after the quarantine, docs/processor.md). */
  unknownAssets: 'reject' | 'accept';
  /** `accept` (default): any well-formed point name; `reject`: only points some range rule names. */
  unknownPoints: 'reject' | 'accept';
  /** Distinct points kept per asset; new ones beyond are rejected `too_many_points` (bounded memory). */
  maxPointsPerAsset: number;
  /** Samples stamped more than this ahead of gateway time are rejected `future_timestamp`. */
  maxFutureMs: number;
  /** Samples older than this (vs gateway time) are rejected `stale_timestamp`. */
  maxPastMs: number;
  /** |gateway - device time| above this marks the samples `uncertain` (specification §3.1 step 3, timestamp synchronisation). */
  maxClockSkewMs: number;
  /** Gaps up to this long are filled by linear interpolation (quality `interpolated`); 0 disables. */
  maxInterpolationGapMs: number;
  ranges: RangeRule[];
  /** Unit -> canonical unit. Units not listed are canonical already. */
  unitConversions: Record<string, UnitConversion>;
  alarmRules: AlarmRuleConfig[];
  /** How often stale-value and comm-loss delays are checked, ms. */
  alarmTickMs: number;
  /**
   * Telemetry of an asset not yet configured or announced waits this long for its announcement
   * before it is rejected `unknown_asset` (start-up order; docs/processor.md). 0: reject at once.
   */
  quarantineMs: number;
  quarantineMaxMessages: number;
  quarantineMaxBytes: number;
  /** Alarm transitions are kept in the journal this long for consumers that missed them (docs/alarms.md). */
  alarmJournalRetentionMs: number;
  /** How often the active alarms are published as a snapshot. */
  alarmSnapshotIntervalMs: number;
}

const GLOBS = { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 128 } } as const;
const TOKEN = '^[a-z0-9][a-z0-9_-]{0,63}$';

const RULE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'kind', 'type', 'severity'],
  properties: {
    id: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    kind: { type: 'string', enum: ['threshold', 'all', 'rate', 'stale', 'frozen', 'state', 'bits', 'comm_loss'] },
    type: { type: 'string', pattern: TOKEN },
    severity: { type: 'string', enum: [...SEVERITIES] },
    assets: GLOBS,
    points: GLOBS,
    op: { type: 'string', enum: ['above', 'below'] },
    limit: { type: 'number' },
    deadband: { type: 'number', minimum: 0 },
    onDelayMs: { type: 'integer', minimum: 0, maximum: 86400000 },
    offDelayMs: { type: 'integer', minimum: 0, maximum: 86400000 },
    conditions: {
      type: 'array',
      minItems: 1,
      maxItems: 8,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['point', 'op', 'limit'],
        properties: { point: { type: 'string', minLength: 1, maxLength: 128 }, op: { type: 'string', enum: ['above', 'below'] }, limit: { type: 'number' } },
      },
    },
    maxPerS: { type: 'number', exclusiveMinimum: 0 },
    maxAgeMs: { type: 'integer', minimum: 1000, maximum: 86400000 },
    maxUnchangedMs: { type: 'integer', minimum: 1000, maximum: 86400000 },
    tolerance: { type: 'number', minimum: 0 },
    minAbs: { type: 'number', minimum: 0 },
    values: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 64 } },
    bits: {
      type: 'object',
      maxProperties: 64,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'severity'],
        properties: { type: { type: 'string', pattern: TOKEN }, severity: { type: 'string', enum: [...SEVERITIES] } },
      },
    },
    states: { type: 'array', minItems: 1, items: { type: 'string', enum: ['online', 'degraded', 'offline'] } },
    updateDelta: { type: 'number', exclusiveMinimum: 0 },
  },
} as const;

export const PROCESSOR_CONFIG_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'siteId', 'metricsIntervalMs', 'logLevel', 'storePath', 'commitWindowMs', 'retentionMs', 'maxStoreBytes', 'minFreeBytes', 'storeSynchronous',
    'maxMessageBytes', 'assets', 'unknownAssets', 'unknownPoints', 'maxPointsPerAsset', 'maxFutureMs', 'maxPastMs', 'maxClockSkewMs',
    'maxInterpolationGapMs', 'ranges', 'unitConversions', 'alarmRules', 'alarmTickMs', 'quarantineMs', 'quarantineMaxMessages', 'quarantineMaxBytes',
    'alarmJournalRetentionMs', 'alarmSnapshotIntervalMs',
  ],
  properties: {
    ...BASE_CONFIG_PROPERTIES,
    storePath: { type: 'string', minLength: 1, maxLength: 1024 },
    commitWindowMs: { type: 'integer', minimum: 10, maximum: 10000 },
    retentionMs: { type: 'integer', minimum: 3600000, maximum: 31536000000 },
    maxStoreBytes: { type: 'integer', minimum: 16777216 },
    minFreeBytes: { type: 'integer', minimum: 0 },
    storeSynchronous: { type: 'string', enum: ['FULL', 'NORMAL'] },
    maxMessageBytes: { type: 'integer', minimum: 1024, maximum: 16777216 },
    assets: { type: 'array', maxItems: 10000, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$' } },
    unknownAssets: { type: 'string', enum: ['reject', 'accept'] },
    unknownPoints: { type: 'string', enum: ['reject', 'accept'] },
    maxPointsPerAsset: { type: 'integer', minimum: 1, maximum: 100000 },
    maxFutureMs: { type: 'integer', minimum: 0, maximum: 86400000 },
    maxPastMs: { type: 'integer', minimum: 1000, maximum: 31536000000 },
    maxClockSkewMs: { type: 'integer', minimum: 0, maximum: 86400000 },
    maxInterpolationGapMs: { type: 'integer', minimum: 0, maximum: 3600000 },
    ranges: {
      type: 'array',
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['points', 'min', 'max', 'action'],
        properties: { points: GLOBS, min: { type: 'number' }, max: { type: 'number' }, action: { type: 'string', enum: ['reject', 'flag'] } },
      },
    },
    unitConversions: {
      type: 'object',
      maxProperties: 128,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['to', 'factor', 'offset'],
        properties: { to: { type: 'string', minLength: 1, maxLength: 32 }, factor: { type: 'number' }, offset: { type: 'number' } },
      },
    },
    alarmRules: { type: 'array', maxItems: 256, items: RULE_SCHEMA },
    alarmTickMs: { type: 'integer', minimum: 100, maximum: 60000 },
    quarantineMs: { type: 'integer', minimum: 0, maximum: 600000 },
    quarantineMaxMessages: { type: 'integer', minimum: 0, maximum: 1000000 },
    quarantineMaxBytes: { type: 'integer', minimum: 0, maximum: 1073741824 },
    alarmJournalRetentionMs: { type: 'integer', minimum: 3600000, maximum: 31536000000 },
    alarmSnapshotIntervalMs: { type: 'integer', minimum: 1000, maximum: 3600000 },
  },
};

const TEMPERATURE_POINTS = ['*.TmpCab', '*.TmpSnk', '*.TmpTrns', '*.TmpOt'];

/** SunSpec model 103 Evt1 bits (SunSpec Information Model Reference, model 103) -> named alarms. */
const EVT1_BITS: Record<string, BitAlarm> = {
  GROUND_FAULT: { type: 'ground_fault', severity: 'critical' },
  DC_OVER_VOLT: { type: 'dc_over_voltage', severity: 'high' },
  AC_DISCONNECT: { type: 'ac_disconnect', severity: 'medium' },
  DC_DISCONNECT: { type: 'dc_disconnect', severity: 'medium' },
  GRID_DISCONNECT: { type: 'grid_disconnect', severity: 'high' },
  CABINET_OPEN: { type: 'cabinet_open', severity: 'low' },
  MANUAL_SHUTDOWN: { type: 'manual_shutdown', severity: 'low' },
  OVER_TEMP: { type: 'inverter_over_temperature', severity: 'high' },
  OVER_FREQUENCY: { type: 'grid_over_frequency', severity: 'medium' },
  UNDER_FREQUENCY: { type: 'grid_under_frequency', severity: 'medium' },
  AC_OVER_VOLT: { type: 'ac_over_voltage', severity: 'medium' },
  AC_UNDER_VOLT: { type: 'ac_under_voltage', severity: 'medium' },
  BLOWN_STRING_FUSE: { type: 'blown_string_fuse', severity: 'high' },
  UNDER_TEMP: { type: 'inverter_under_temperature', severity: 'low' },
  MEMORY_LOSS: { type: 'memory_loss', severity: 'medium' },
  HW_TEST_FAILURE: { type: 'hardware_test_failure', severity: 'high' },
};

export const PROCESSOR_DEFAULTS: ProcessorConfig = {
  ...BASE_DEFAULTS,
  storePath: 'raw.db',
  commitWindowMs: 250,
  retentionMs: 7 * 24 * 3600000,
  maxStoreBytes: 32 * 1024 ** 3,
  minFreeBytes: 2 * 1024 ** 3,
  storeSynchronous: 'FULL',
  maxMessageBytes: 262144,
  assets: [],
  unknownAssets: 'reject',
  unknownPoints: 'accept',
  maxPointsPerAsset: 4096,
  maxFutureMs: 5000,
  maxPastMs: 24 * 3600000,
  maxClockSkewMs: 60000,
  maxInterpolationGapMs: 10000,
  ranges: [
    // Specification §3.2: active power -10..100 MW (SunSpec W is AC active power, in W).
    { points: ['*.W', 'W', 'active_power'], min: -10e6, max: 100e6, action: 'reject' },
    // Specification §3.2: DC voltage 0..1500 V (model 103 DCV, model 160 module DCV).
    { points: ['*.DCV', 'DCV', 'dc_voltage'], min: 0, max: 1500, action: 'reject' },
  ],
  unitConversions: {
    C: { to: 'Cel', factor: 1, offset: 0 },
    degC: { to: 'Cel', factor: 1, offset: 0 },
    kW: { to: 'W', factor: 1000, offset: 0 },
    MW: { to: 'W', factor: 1e6, offset: 0 },
    kWh: { to: 'Wh', factor: 1000, offset: 0 },
    MWh: { to: 'Wh', factor: 1e6, offset: 0 },
    kV: { to: 'V', factor: 1000, offset: 0 },
    mA: { to: 'A', factor: 0.001, offset: 0 },
    kVA: { to: 'VA', factor: 1000, offset: 0 },
    kvar: { to: 'var', factor: 1000, offset: 0 },
  },
  alarmRules: [
    { id: 'over-temperature', kind: 'threshold', type: 'over_temperature', severity: 'high', points: TEMPERATURE_POINTS, op: 'above', limit: 75, deadband: 2, onDelayMs: 0, offDelayMs: 0, updateDelta: 5 },
    {
      id: 'possible-soiling',
      kind: 'all',
      type: 'possible_soiling',
      severity: 'medium',
      conditions: [
        { point: 'poa', op: 'below', limit: 200 },
        { point: 'moduleTemp', op: 'above', limit: 50 },
      ],
      onDelayMs: 0,
      offDelayMs: 0,
    },
    { id: 'inverter-fault', kind: 'state', type: 'inverter_fault', severity: 'high', points: ['*.St'], values: ['FAULT'] },
    { id: 'inverter-events', kind: 'bits', type: 'inverter_event', severity: 'medium', points: ['*.Evt1'], bits: EVT1_BITS },
    { id: 'communication-loss', kind: 'comm_loss', type: 'communication_loss', severity: 'high', states: ['offline'], onDelayMs: 0 },
    { id: 'frozen-power', kind: 'frozen', type: 'frozen_value', severity: 'medium', points: ['*.W'], maxUnchangedMs: 600000, tolerance: 0, minAbs: 100 },
  ],
  alarmTickMs: 1000,
  quarantineMs: 60000,
  quarantineMaxMessages: 5000,
  quarantineMaxBytes: 16 * 1024 ** 2,
  alarmJournalRetentionMs: 7 * 24 * 3600000,
  alarmSnapshotIntervalMs: 60000,
};

export const processorConfigSpec: ConfigSpec<ProcessorConfig> = {
  schema: PROCESSOR_CONFIG_SCHEMA,
  defaults: PROCESSOR_DEFAULTS,
  // Alarm rules need fields by kind and unique ids (alarms/rules.ts): a bad rule fails validation.
  check: (c) => void compileRules(c.alarmRules),
};
