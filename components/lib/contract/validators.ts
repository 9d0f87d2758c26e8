/**
 * Runtime validators, one per payload type: consumers turn `unknown` from the bus into typed
 * payloads or get a reason to count and log (docs/conventions.md "Types" and "Errors": bad input
 * is a counted, logged rejection).
 */
import { Fields, ID_PATTERN, invalid, isRecord, isTopicId, nested, validator, type Validator } from './check';
import {
  AGGREGATE_INTERVALS,
  ALARM_STATES,
  ALARM_TRANSITIONS,
  ANALYTICS_KINDS,
  COMPONENT_STATES,
  CONNECTION_STATES,
  CONTRACT_VERSION,
  CONTROL_ACTIONS,
  CONTROL_RESULT_DATA_KINDS,
  CONTROL_STATUSES,
  IV_CURVE_MAX_POINTS,
  DECISION_OUTCOMES,
  OPERATOR_ACTIONS,
  DEVICE_STATES,
  ML_MODELS,
  QUALITIES,
  SEVERITIES,
  SITE_STATUSES,
  type AggregateMessage,
  type DailySummary,
  type AlarmMessage,
  type AlarmSnapshot,
  type AlarmSyncRequest,
  type AnalyticsMessage,
  type ComponentHealth,
  type ControlCommand,
  type ControlDecision,
  type ControlResult,
  type OperatorRequest,
  type DeviceStatus,
  type MlResult,
  type SiteHealthSummary,
  type StoreCommitNotice,
  type TelemetryMessage,
  type UplinkBatch,
  type UplinkStatus,
  UPLINK_EXPORTER_STATES,
  UPLINK_KINDS,
} from './payloads';

/** Point and series names: SunSpec-style identifiers (`W`, `PhVphA`, `DCA_1`, `string.3.current`). */
export const POINT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;
/** snake_case-ish tokens: alarm types, component short names. */
const TOKEN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Epoch ms sanity bounds: 2000-01-01 .. 2100-01-01. A value outside is a unit bug (seconds, µs). */
const TS = { min: 946684800000, max: 4102444800000, int: true } as const;
const MAX_POINTS = 10000;

function header(f: Fields): void {
  f.schemaVersion(CONTRACT_VERSION);
  f.id('siteId');
}

function assetHeader(f: Fields): void {
  header(f);
  f.id('assetId');
}

function optJsonObject(f: Fields, key: string): void {
  if (f.has(key) && !isRecord(f.rec[key])) f.fail(key, 'must be an object');
}

function pointValue(f: Fields, key: string): void {
  const v = f.rec[key];
  if (v === null || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) f.fail(key, 'must be finite (NaN/Infinity travel as null with q=bad)');
    return;
  }
  if (typeof v === 'string') {
    if (v.length > 256) f.fail(key, 'must be at most 256 characters');
    return;
  }
  f.fail(key, 'must be a number, string, boolean or null');
}

export const validateTelemetry: Validator<TelemetryMessage> = validator((f) => {
  assetHeader(f);
  f.num('ts', TS);
  f.num('seq', { min: 0, int: true });
  const points = f.obj('points');
  for (const [name, p] of points.entries(MAX_POINTS)) {
    if (!POINT_NAME.test(name)) points.fail(name, `point name must match ${POINT_NAME.source}`);
    nested(p, `${points.path}.${name}`, (pf) => {
      if (!('v' in pf.rec)) pf.fail('v', 'is required (null for no value)');
      pointValue(pf, 'v');
      pf.optStr('u', { max: 32 });
      pf.oneOf('q', QUALITIES);
    });
  }
});

export const validateAlarm: Validator<AlarmMessage> = validator((f) => {
  assetHeader(f);
  f.str('alarmId', { max: 128 });
  f.str('type', { pattern: TOKEN });
  f.oneOf('severity', SEVERITIES);
  f.oneOf('state', ALARM_STATES);
  f.num('ts', TS);
  f.str('source', { pattern: TOKEN });
  if (f.has('point')) f.str('point', { pattern: POINT_NAME });
  if (f.has('value')) f.numOrNull('value');
  f.optNum('threshold');
  f.optStr('message', { max: 512 });
  optJsonObject(f, 'details');
  if (f.has('transition')) f.oneOf('transition', ALARM_TRANSITIONS);
  f.optNum('transitionSeq', { min: 0, int: true });
  if (f.has('journalId')) f.str('journalId', { max: 64, pattern: ID_PATTERN });
  f.optNum('sourceSeq', { min: 1, int: true });
  if (f.has('replayed')) f.bool('replayed');
});

function checkAlarm(value: unknown, path: string): void {
  const v = validateAlarm(value);
  if (!v.ok) invalid(path, v.reason);
}

export const validateAlarmSyncRequest: Validator<AlarmSyncRequest> = validator((f) => {
  header(f);
  f.num('ts', TS);
  f.str('requester', { pattern: TOKEN });
  const from = f.optObj('from');
  if (from) {
    for (const [source, pos] of from.entries(64)) {
      if (!TOKEN.test(source)) from.fail(source, `source must match ${TOKEN.source}`);
      nested(pos, `${from.path}.${source}`, (p) => {
        p.str('journalId', { max: 64, pattern: ID_PATTERN });
        p.num('seq', { min: 1, int: true });
      });
    }
  }
});

/** Alarms per snapshot page; a source with more active alarms sends several pages. */
export const ALARM_SNAPSHOT_PAGE = 200;

export const validateAlarmSnapshot: Validator<AlarmSnapshot> = validator((f) => {
  header(f);
  f.str('source', { pattern: TOKEN });
  f.num('ts', TS);
  f.str('journalId', { max: 64, pattern: ID_PATTERN });
  f.num('headSeq', { min: 0, int: true });
  f.num('oldestSeq', { min: 0, int: true });
  f.arr('active', { max: ALARM_SNAPSHOT_PAGE }).forEach((a, i) => checkAlarm(a, `active[${i}]`));
  const pages = f.num('pages', { min: 1, int: true });
  f.num('page', { min: 1, max: pages, int: true });
  if (f.has('requestedBy')) f.str('requestedBy', { pattern: TOKEN });
});

export const validateStoreCommitNotice: Validator<StoreCommitNotice> = validator((f) => {
  header(f);
  f.num('ts', TS);
  f.str('runId', { max: 64, pattern: ID_PATTERN });
  f.num('seq', { min: 1, int: true });
  f.arr('ranges', { max: 100000 }).forEach((r, i) =>
    nested(r, `ranges[${i}]`, (x) => {
      x.id('assetId');
      const from = x.num('from', TS);
      x.num('to', { ...TS, min: from });
      x.num('samples', { min: 1, int: true });
    }),
  );
  f.optNum('lateLogId', { min: 0, int: true });
});

export const validateAggregate: Validator<AggregateMessage> = validator((f) => {
  assetHeader(f);
  f.oneOf('interval', AGGREGATE_INTERVALS);
  const start = f.num('start', TS);
  const end = f.num('end', TS);
  if (end <= start) f.fail('end', `must be after start (${start})`);
  const series = f.obj('series');
  for (const [name, s] of series.entries(MAX_POINTS)) {
    if (!POINT_NAME.test(name)) series.fail(name, `series name must match ${POINT_NAME.source}`);
    nested(s, `${series.path}.${name}`, (sf) => {
      sf.num('count', { min: 0, int: true });
      for (const k of ['min', 'max', 'avg', 'stddev', 'sum', 'energyWh']) sf.optNum(k);
      sf.optStr('u', { max: 32 });
    });
  }
  f.optNum('revision', { min: 0, int: true });
});

/** The Aggregator's daily summary (payloads.ts DailySummary). */
export const validateDailySummary: Validator<DailySummary> = validator((f) => {
  header(f);
  f.str('day', { max: 10, pattern: /^\d{4}-\d{2}-\d{2}$/ });
  f.str('timeZone', { max: 64 });
  const start = f.num('start', TS);
  const end = f.num('end', TS);
  if (end <= start) f.fail('end', `must be after start (${start})`);
  f.num('revision', { min: 0, int: true });
  f.optNum('energyWh');
  const assets = f.obj('assets');
  for (const [id, a] of assets.entries(MAX_POINTS)) {
    if (!isTopicId(id)) assets.fail(id, 'asset id must be a topic id');
    nested(a, `${assets.path}.${id}`, (af) => {
      for (const k of ['energyWh', 'peakW', 'avgW']) af.optNum(k);
      af.num('series', { min: 0, int: true });
      af.num('samples', { min: 0, int: true });
    });
  }
});

export const validateAnalytics: Validator<AnalyticsMessage> = validator((f) => {
  assetHeader(f);
  f.oneOf('kind', ANALYTICS_KINDS);
  f.num('ts', TS);
  f.numOrNull('value');
  f.optStr('u', { max: 32 });
  optJsonObject(f, 'details');
});

export const validateMlResult: Validator<MlResult> = validator((f) => {
  assetHeader(f);
  const model = f.oneOf('model', ML_MODELS);
  f.str('modelVersion', { max: 64 });
  f.num('ts', TS);
  f.num('inferenceMs', { min: 0 });
  if (model === 'fault') f.num('score', { min: 0, max: 1 });
  if (model === 'anomaly') f.num('score', { min: -1, max: 1 });
  if (model === 'forecast') {
    const fc = f.obj('forecast');
    fc.num('stepMs', { min: 1, int: true });
    const values = fc.arr('values', { max: 10000 });
    values.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) fc.fail(`values[${i}]`, 'must be a finite number');
    });
    fc.optStr('u', { max: 32 });
  }
});

export const validateControlCommand: Validator<ControlCommand> = validator((f) => {
  assetHeader(f);
  f.str('commandId', { max: 128 });
  f.num('ts', TS);
  f.oneOf('action', CONTROL_ACTIONS);
  const params = f.obj('params');
  for (const [k, v] of params.entries(64)) {
    if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean') params.fail(k, 'must be a number, string or boolean');
    if (typeof v === 'number' && !Number.isFinite(v)) params.fail(k, 'must be finite');
  }
  f.str('issuedBy', { pattern: TOKEN });
  f.optStr('reason', { max: 512 });
  f.optNum('expiresAt', TS);
});

/**
 * Bounds of an IV curve's values: up to 1500 V DC systems (IEC 62548) with margin, string and
 * MPPT-input currents with margin, and a little below zero for a meter's offset at the ends.
 */
const IV_BOUNDS = { v: { min: -50, max: 2000 }, i: { min: -50, max: 1000 } } as const;

function numbers(f: Fields, key: 'v' | 'i'): number[] {
  const list = f.arr(key, { max: IV_CURVE_MAX_POINTS });
  const { min, max } = IV_BOUNDS[key];
  list.forEach((x, n) => {
    if (typeof x !== 'number' || !Number.isFinite(x)) f.fail(`${key}[${n}]`, 'must be a finite number');
    if (x < min || x > max) f.fail(`${key}[${n}]`, `must be within ${min}..${max} (got ${x})`);
  });
  return list as number[];
}

export const validateControlResult: Validator<ControlResult> = validator((f) => {
  assetHeader(f);
  f.str('commandId', { max: 128 });
  f.num('ts', TS);
  const status = f.oneOf('status', CONTROL_STATUSES);
  f.optStr('message', { max: 512 });
  f.optNum('durationMs', { min: 0 });
  const d = f.optObj('data');
  if (d) {
    if (status !== 'succeeded') f.fail('data', 'only a succeeded result carries data');
    d.oneOf('kind', CONTROL_RESULT_DATA_KINDS);
    d.num('string', { min: 1, max: 1000, int: true });
    const v = numbers(d, 'v');
    const i = numbers(d, 'i');
    if (v.length < 2) d.fail('v', 'must have at least 2 points');
    if (i.length !== v.length) d.fail('i', `must have as many points as v (${v.length}, got ${i.length})`);
    d.optNum('irradiance', { min: 0, max: 2000 });
    d.optNum('temperature', { min: -60, max: 150 });
  }
});

function controlParams(f: Fields, key: string): void {
  const params = f.obj(key);
  for (const [k, v] of params.entries(64)) {
    if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean') params.fail(k, 'must be a number, string or boolean');
    if (typeof v === 'number' && !Number.isFinite(v)) params.fail(k, 'must be finite');
  }
}

export const validateControlDecision: Validator<ControlDecision> = validator((f) => {
  assetHeader(f);
  f.num('ts', TS);
  f.str('decisionId', { max: 128 });
  f.str('ruleId', { max: 64, pattern: /^[A-Za-z0-9_.-]{1,64}$/ });
  f.oneOf('action', CONTROL_ACTIONS);
  controlParams(f, 'params');
  f.arr('inputs', { max: 64 }).forEach((it, i) =>
    nested(it, `inputs[${i}]`, (x) => {
      x.oneOf('source', ['alarm', 'value', 'analytics', 'ml', 'operator'] as const);
      x.str('ref', { max: 256 });
      pointValue(x, 'value');
      x.num('ts', TS);
      if (x.has('quality')) x.oneOf('quality', QUALITIES);
    }),
  );
  f.oneOf('outcome', DECISION_OUTCOMES);
  f.optStr('reason', { max: 512 });
  f.optStr('commandId', { max: 128 });
  f.optNum('attempt', { min: 1, int: true });
  f.optNum('latencyMs', { min: 0 });
});

export const validateOperatorRequest: Validator<OperatorRequest> = validator((f) => {
  header(f);
  f.num('ts', TS);
  f.str('requestId', { max: 128 });
  f.str('operator', { max: 64 });
  const action = f.oneOf('action', OPERATOR_ACTIONS);
  if (f.has('assetId') || action !== 'acknowledge') f.id('assetId');
  if (action === 'acknowledge') f.str('alarmId', { max: 128 });
  if (f.has('params')) controlParams(f, 'params');
  f.optStr('reason', { max: 512 });
});

export const validateDeviceStatus: Validator<DeviceStatus> = validator((f) => {
  assetHeader(f);
  f.num('ts', TS);
  f.oneOf('state', DEVICE_STATES);
  if (f.rec['lastSeen'] !== null) f.num('lastSeen', TS);
  f.num('consecutiveFailures', { min: 0, int: true });
  f.optStr('message', { max: 512 });
  if (f.has('models')) {
    f.arr('models', { max: 256 }).forEach((m, i) => {
      if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 65535) f.fail(`models[${i}]`, 'must be a SunSpec model id 1..65535');
    });
  }
  if (f.has('heartbeat')) f.bool('heartbeat');
});

function counterMap(f: Fields, key: string): void {
  const m = f.obj(key);
  for (const [k, v] of m.entries(256)) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) m.fail(k, 'must be a non-negative integer');
  }
}

export function checkMetricsSnapshot(f: Fields): void {
  for (const k of ['messagesIn', 'messagesOut', 'errors', 'queueDepth']) f.num(k, { min: 0, int: true });
  const le = f.optObj('lastError');
  if (le) {
    le.str('code', { max: 64 });
    le.str('message', { max: 1024, min: 0 });
    le.num('at', TS);
  } else if (f.rec['lastError'] !== null) f.fail('lastError', 'must be an object or null');
  const lat = f.obj('latencyMs');
  for (const k of ['p50', 'p99', 'max']) lat.num(k, { min: 0 });
  lat.num('samples', { min: 0, int: true });
  counterMap(f, 'queues');
  f.oneOf('connectionState', CONNECTION_STATES);
  counterMap(f, 'rejections');
  counterMap(f, 'dropped');
}

export const validateComponentHealth: Validator<ComponentHealth> = validator((f) => {
  header(f);
  f.str('component', { pattern: TOKEN });
  f.str('componentName', { max: 128, pattern: /^[A-Za-z0-9._-]+$/ });
  f.str('version', { max: 64 });
  f.oneOf('state', COMPONENT_STATES);
  f.num('ts', TS);
  f.num('uptimeMs', { min: 0 });
  f.num('intervalMs', { min: 1 });
  checkMetricsSnapshot(f.obj('metrics'));
  if (f.has('models')) {
    f.arr('models', { max: 32 }).forEach((m, i) =>
      nested(m, `models[${i}]`, (x) => {
        x.str('name', { pattern: TOKEN });
        x.str('version', { max: 64 });
      }),
    );
  }
});

export const validateSiteHealthSummary: Validator<SiteHealthSummary> = validator((f) => {
  header(f);
  f.num('ts', TS);
  f.oneOf('status', SITE_STATUSES);
  f.arr('issues', { max: 1000 }).forEach((it, i) =>
    nested(it, `issues[${i}]`, (x) => {
      x.oneOf('severity', SEVERITIES);
      x.str('code', { max: 64 });
      x.str('message', { max: 1024 });
    }),
  );
  f.arr('components', { max: 256 }).forEach((c, i) =>
    nested(c, `components[${i}]`, (x) => {
      x.str('component', { pattern: TOKEN });
      x.bool('stale');
      x.oneOf('state', [...COMPONENT_STATES, 'missing'] as const);
      if (x.rec['metrics'] !== null) checkMetricsSnapshot(x.obj('metrics'));
    }),
  );
  if (f.rec['system'] !== null) f.obj('system').num('memoryPercent', { min: 0, max: 100 });
});

/** For the cloud side and tests: an Uplink batch as published to IoT Core (after gunzip + JSON.parse). */
export const validateUplinkBatch: Validator<UplinkBatch> = validator((f) => {
  header(f);
  f.oneOf('kind', UPLINK_KINDS);
  if (f.has('interval')) f.oneOf('interval', AGGREGATE_INTERVALS);
  f.num('seq', { min: 0, int: true });
  if (f.has('outboxId')) f.str('outboxId', { max: 64, pattern: ID_PATTERN });
  f.num('createdAt', TS);
  f.arr('items', { max: 100000 });
});

export const validateUplinkStatus: Validator<UplinkStatus> = validator((f) => {
  header(f);
  f.num('ts', TS);
  const ex = f.obj('exporters');
  for (const k of Object.keys(ex.rec)) nested(ex.rec[k], `exporters.${k}`, (x) => x.oneOf('state', UPLINK_EXPORTER_STATES));
  f.num('outboxBytes', { min: 0 });
  f.num('maxOutboxBytes', { min: 0 });
});
