import fs from 'node:fs';
import path from 'node:path';
import {
  IV_CURVE_MAX_POINTS,
  COMPONENTS,
  COMPONENT_NAMES,
  COMPONENT_TOPICS,
  CONTRACT_VERSION,
  LOCAL_TOPIC_TEMPLATES,
  MQTTPROXY_SERVICE,
  OPERATIONS,
  PUBSUB_SERVICE,
  TopicError,
  accessControlFor,
  filterFor,
  filters,
  iotTopics,
  parseTopic,
  topics,
  validateAggregate,
  validateAlarm,
  validateAlarmSnapshot,
  validateAlarmSyncRequest,
  validateAnalytics,
  validateComponentHealth,
  validateControlCommand,
  validateControlDecision,
  validateControlResult,
  validateDeviceStatus,
  validateMlResult,
  validateOperatorRequest,
  validateSiteHealthSummary,
  validateStoreCommitNotice,
  validateTelemetry,
  type ComponentName,
  type LocalFamily,
  type Validator,
} from '../../components/lib/contract';
import { createMetrics } from '../../components/lib/metrics';
import { mqttMatch } from '../../components/lib/testing/fake-ipc';

const TS = Date.UTC(2025, 0, 15, 12, 0, 0);
const metrics = createMetrics({ clock: { now: () => TS } }).snapshot();

/** Greengrass pubsub policy matching: `*` globs any characters (including `/`); `+`/`#` are literal. */
function pubsubAllows(resource: string, topicOrFilter: string): boolean {
  const re = new RegExp(`^${resource.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\#]/g, '\\$&')).join('.*')}$`);
  return re.test(topicOrFilter);
}

/** mqttproxy policy matching: `+`/`#` are MQTT wildcards; a filter is allowed if the resource covers it. */
function mqttAllows(resource: string, topicOrFilter: string): boolean {
  if (resource === topicOrFilter) return true;
  return !/[+#]/.test(topicOrFilter) && mqttMatch(resource, topicOrFilter);
}

const SAMPLES = {
  telemetry: { schemaVersion: 1, siteId: 's1', assetId: 'inv-01', ts: TS, seq: 7, points: { W: { v: 5120.5, u: 'W', q: 'good' }, St: { v: 'MPPT', q: 'good' }, DCA_1: { v: null, q: 'bad' } } },
  alarm: { schemaVersion: 1, siteId: 's1', assetId: 'inv-01', alarmId: 'a-1', type: 'over_temperature', severity: 'high', state: 'raised', ts: TS, source: 'processor', point: 'TmpCab', value: 78, threshold: 75 },
  aggregate: { schemaVersion: 1, siteId: 's1', assetId: 'inv-01', interval: '1m', start: TS, end: TS + 60000, series: { W: { count: 60, min: 1, max: 9, avg: 5, stddev: 1.2, u: 'W' } } },
  analytics: { schemaVersion: 1, siteId: 's1', assetId: 'inv-01', kind: 'performance_ratio', ts: TS, value: 82.5, u: '%' },
  ml: { schemaVersion: 1, siteId: 's1', assetId: 'inv-01', model: 'fault', modelVersion: '2025.01', ts: TS, score: 0.12, inferenceMs: 0.4 },
  command: { schemaVersion: 1, siteId: 's1', assetId: 'inv-01', commandId: 'c-1', ts: TS, action: 'curtail', params: { limitPct: 50 }, issuedBy: 'local-control', expiresAt: TS + 5000 },
  result: { schemaVersion: 1, siteId: 's1', assetId: 'inv-01', commandId: 'c-1', ts: TS, status: 'succeeded', durationMs: 35 },
  ivScan: { schemaVersion: 1, siteId: 's1', assetId: 'cb-01', commandId: 'c-2', ts: TS, status: 'succeeded', durationMs: 2300, data: { kind: 'iv_curve', string: 2, v: [0, 600, 700], i: [10, 9, 0], irradiance: 850.5, temperature: 41.2 } },
  ivCommand: { schemaVersion: 1, siteId: 's1', assetId: 'cb-01', commandId: 'c-2', ts: TS, action: 'iv_scan', params: { string: 2 }, issuedBy: 'analytics' },
  device: { schemaVersion: 1, siteId: 's1', assetId: 'inv-01', ts: TS, state: 'online', lastSeen: TS, consecutiveFailures: 0 },
  health: { schemaVersion: 1, siteId: 's1', component: 'processor', componentName: 'com.dcmms.edge.Processor', version: '0.1.0', state: 'running', ts: TS, uptimeMs: 1000, intervalMs: 10000, metrics },
  summary: { schemaVersion: 1, siteId: 's1', ts: TS, status: 'healthy', issues: [], components: [{ component: 'processor', componentName: 'com.dcmms.edge.Processor', version: '0.1.0', state: 'running', stale: false, lastReportAt: TS, uptimeMs: 1, metrics }], system: null },
  journaled: {
    schemaVersion: 1, siteId: 's1', assetId: 'inv-01', alarmId: 'a-1', type: 'over_temperature', severity: 'high', state: 'raised', ts: TS, source: 'processor',
    transition: 'updated', transitionSeq: 2, journalId: 'j-1', sourceSeq: 17, replayed: true,
  },
  sync: { schemaVersion: 1, siteId: 's1', ts: TS, requester: 'uplink', from: { processor: { journalId: 'j-1', seq: 12 } } },
  snapshot: { schemaVersion: 1, siteId: 's1', source: 'processor', ts: TS, journalId: 'j-1', headSeq: 17, oldestSeq: 1, active: [], page: 1, pages: 1 },
  commits: { schemaVersion: 1, siteId: 's1', ts: TS, runId: 'r-1', seq: 3, ranges: [{ assetId: 'inv-01', from: TS - 1000, to: TS, samples: 40 }] },
  decision: {
    schemaVersion: 1, siteId: 's1', assetId: 'inv-01', ts: TS, decisionId: 'd-1', ruleId: 'curtail-hot', action: 'curtail', params: { percent: 50 },
    inputs: [{ source: 'alarm', ref: 'a-1', value: 78, ts: TS - 200 }, { source: 'value', ref: 'inv-01/103.TmpCab', value: 78, ts: TS - 200, quality: 'good' }],
    outcome: 'commanded', commandId: 'c-1', attempt: 1, latencyMs: 12,
  },
  operator: { schemaVersion: 1, siteId: 's1', ts: TS, requestId: 'r-1', operator: 'cli', action: 'manual', assetId: 'inv-01', reason: 'maintenance' },
};

/** An IV curve as an iv_scan result carries it. */
const IV_DATA = { kind: 'iv_curve', string: 2, v: [0, 600, 700], i: [10, 9, 0], irradiance: 850.5, temperature: 41.2 };

const VALIDATORS: Record<keyof typeof SAMPLES, Validator<unknown>> = {
  telemetry: validateTelemetry,
  alarm: validateAlarm,
  aggregate: validateAggregate,
  analytics: validateAnalytics,
  ml: validateMlResult,
  command: validateControlCommand,
  result: validateControlResult,
  ivScan: validateControlResult,
  ivCommand: validateControlCommand,
  device: validateDeviceStatus,
  health: validateComponentHealth,
  summary: validateSiteHealthSummary,
  journaled: validateAlarm,
  sync: validateAlarmSyncRequest,
  snapshot: validateAlarmSnapshot,
  commits: validateStoreCommitNotice,
  decision: validateControlDecision,
  operator: validateOperatorRequest,
};

describe('topics', () => {
  test('builders spell every family as the contract says', () => {
    expect(topics.rawTelemetry('s1', 'inv-01')).toBe('site/s1/scada/inv-01/telemetry');
    expect(topics.alarms('s1', 'inv-01')).toBe('site/s1/scada/inv-01/alarms');
    expect(topics.processedTelemetry('s1', 'inv-01')).toBe('site/s1/processed/inv-01/telemetry');
    expect(topics.aggregates('s1', '15m', 'inv-01')).toBe('site/s1/aggregates/15m/inv-01');
    expect(topics.analytics('s1', 'inv-01', 'soiling')).toBe('site/s1/analytics/inv-01/soiling');
    expect(topics.mlResult('s1', 'inv-01', 'forecast')).toBe('site/s1/ml/inv-01/forecast');
    expect(topics.controlCommand('s1', 'inv-01')).toBe('site/s1/control/inv-01/command');
    expect(topics.controlResult('s1', 'inv-01')).toBe('site/s1/control/inv-01/result');
    expect(topics.deviceStatus('s1', 'inv-01')).toBe('site/s1/devices/inv-01/status');
    expect(topics.componentHealth('s1', 'modbus-adapter')).toBe('site/s1/health/modbus-adapter');
    expect(topics.healthSummary('s1')).toBe('site/s1/summary/health');
    expect(iotTopics.alarms('s1')).toBe('dcmms/s1/alarms');
    expect(iotTopics.telemetry('s1', '1d')).toBe('dcmms/s1/telemetry/1d');
    expect(iotTopics.health('s1')).toBe('dcmms/s1/health');
    expect(iotTopics.events('s1')).toBe('dcmms/s1/events');
  });

  test.each(['a/b', '+', '#', 'x*', '', '.hidden', 'x'.repeat(65)])('ids that cannot be one topic level are refused: %j', (id) => {
    expect(() => topics.rawTelemetry(id, 'inv-01')).toThrow(TopicError);
    expect(() => topics.rawTelemetry('s1', id)).toThrow(TopicError);
    expect(() => iotTopics.health(id)).toThrow(TopicError);
  });

  test('filters fix the site and wildcard the rest', () => {
    expect(filters.rawTelemetry('s1').filter).toBe('site/s1/scada/+/telemetry');
    expect(filters.aggregates('s1').filter).toBe('site/s1/aggregates/+/+');
    expect(filters.aggregates('s1', '1m').filter).toBe('site/s1/aggregates/1m/+');
    expect(filters.componentHealth('s1').filter).toBe('site/s1/health/+');
    expect(filterFor('analytics', 's1', { assetId: 'inv-01' }).filter).toBe('site/s1/analytics/inv-01/+');
  });

  test('every family parses back to itself, and no filter of one family matches another family', () => {
    const samples: Record<LocalFamily, string> = {
      rawTelemetry: topics.rawTelemetry('s1', 'a'),
      alarms: topics.alarms('s1', 'a'),
      processedTelemetry: topics.processedTelemetry('s1', 'a'),
      aggregates: topics.aggregates('s1', '1m', 'a'),
      analytics: topics.analytics('s1', 'a', 'soiling'),
      mlResult: topics.mlResult('s1', 'a', 'fault'),
      controlCommand: topics.controlCommand('s1', 'a'),
      controlResult: topics.controlResult('s1', 'a'),
      deviceStatus: topics.deviceStatus('s1', 'a'),
      componentHealth: topics.componentHealth('s1', 'a'),
      healthSummary: topics.healthSummary('s1'),
      dailySummary: topics.dailySummary('s1'),
      alarmSync: topics.alarmSync('s1'),
      alarmSnapshot: topics.alarmSnapshot('s1', 'processor'),
      storeCommits: topics.storeCommits('s1'),
      controlDecision: topics.controlDecision('s1', 'a'),
      operatorRequest: topics.operatorRequest('s1'),
    };
    expect(Object.keys(samples).sort()).toEqual(Object.keys(LOCAL_TOPIC_TEMPLATES).sort());
    for (const [family, topic] of Object.entries(samples) as Array<[LocalFamily, string]>) {
      expect(parseTopic(topic)?.family).toBe(family);
      for (const [other, otherTopic] of Object.entries(samples)) {
        expect(mqttMatch(filterFor(family, 's1').filter, otherTopic)).toBe(other === family);
      }
    }
    expect(parseTopic('site/s1/health/processor')?.vars).toEqual({ siteId: 's1', component: 'processor' });
    expect(parseTopic('site/s1/unknown/x')).toBeUndefined();
  });

  test('no file under components/ outside the contract spells a topic', () => {
    const root = path.resolve(__dirname, '../../components');
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (p !== path.join(root, 'lib', 'contract')) walk(p);
        } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) {
          // Comments may cite topics; code may not spell them.
          const code = fs
            .readFileSync(p, 'utf8')
            .replace(/\/\*[\s\S]*?\*\//g, '')
            .replace(/^\s*\/\/.*$/gm, '');
          if (/['"`](site|dcmms)\/[^'"`]*['"`]/.test(code)) offenders.push(path.relative(root, p));
        }
      }
    };
    walk(root);
    expect(offenders).toEqual([]);
  });
});

describe('validators', () => {
  test.each(Object.keys(SAMPLES) as Array<keyof typeof SAMPLES>)('%s: a well-formed payload passes', (kind) => {
    const v = VALIDATORS[kind](SAMPLES[kind]);
    expect(v).toEqual({ ok: true, value: SAMPLES[kind] });
  });

  test.each(Object.keys(SAMPLES) as Array<keyof typeof SAMPLES>)('%s: another schemaVersion is refused as unsupported', (kind) => {
    const v = VALIDATORS[kind]({ ...SAMPLES[kind], schemaVersion: CONTRACT_VERSION + 1 });
    expect(v).toMatchObject({ ok: false, code: 'unsupported_schema_version' });
  });

  const t = SAMPLES.telemetry;
  test.each<[string, Validator<unknown>, unknown, string]>([
    ['not an object', validateTelemetry, 'hello', '(root): must be an object'],
    ['no schemaVersion', validateTelemetry, { ...t, schemaVersion: undefined }, 'schemaVersion: must be a number'],
    ['asset id with a slash', validateTelemetry, { ...t, assetId: 'a/b' }, 'assetId: must match'],
    ['ts in seconds', validateTelemetry, { ...t, ts: Math.floor(TS / 1000) }, 'ts: must be >='],
    ['negative seq', validateTelemetry, { ...t, seq: -1 }, 'seq: must be >= 0'],
    ['bad quality', validateTelemetry, { ...t, points: { W: { v: 1, q: 'great' } } }, 'points.W.q: must be one of good|uncertain|bad|not_implemented|interpolated'],
    ['missing value', validateTelemetry, { ...t, points: { W: { q: 'good' } } }, 'points.W.v: is required'],
    ['NaN value', validateTelemetry, { ...t, points: { W: { v: Number.NaN, q: 'good' } } }, 'points.W.v: must be finite'],
    ['object value', validateTelemetry, { ...t, points: { W: { v: { x: 1 }, q: 'good' } } }, 'points.W.v: must be a number, string, boolean or null'],
    ['bad point name', validateTelemetry, { ...t, points: { 'a b': { v: 1, q: 'good' } } }, 'points.a b: point name must match'],
    ['alarm severity', validateAlarm, { ...SAMPLES.alarm, severity: 'urgent' }, 'severity: must be one of critical|high|medium|low'],
    ['aggregate interval', validateAggregate, { ...SAMPLES.aggregate, interval: '5m' }, 'interval: must be one of 1m|15m|1d'],
    ['aggregate end before start', validateAggregate, { ...SAMPLES.aggregate, end: TS }, 'end: must be after start'],
    ['fault score out of range', validateMlResult, { ...SAMPLES.ml, score: 1.5 }, 'score: must be <= 1'],
    ['forecast without values', validateMlResult, { ...SAMPLES.ml, model: 'forecast', forecast: { stepMs: 900000 } }, 'forecast.values: must be an array'],
    ['command param object', validateControlCommand, { ...SAMPLES.command, params: { x: {} } }, 'params.x: must be a number, string or boolean'],
    ['result status', validateControlResult, { ...SAMPLES.result, status: 'done' }, 'status: must be one of'],
    ['result data kind', validateControlResult, { ...SAMPLES.result, data: { ...IV_DATA, kind: 'curve' } }, 'data.kind: must be one of iv_curve'],
    ['result data on a failed command', validateControlResult, { ...SAMPLES.result, status: 'failed', data: IV_DATA }, 'data: only a succeeded result carries data'],
    ['IV curve lengths differ', validateControlResult, { ...SAMPLES.result, data: { ...IV_DATA, i: [10, 9] } }, 'data.i: must have as many points as v (3, got 2)'],
    ['IV curve of one point', validateControlResult, { ...SAMPLES.result, data: { ...IV_DATA, v: [0], i: [10] } }, 'data.v: must have at least 2 points'],
    ['IV curve too long', validateControlResult, { ...SAMPLES.result, data: { ...IV_DATA, v: new Array(IV_CURVE_MAX_POINTS + 1).fill(1), i: new Array(IV_CURVE_MAX_POINTS + 1).fill(1) } }, `data.v: must have at most ${IV_CURVE_MAX_POINTS} items`],
    ['IV voltage not a number', validateControlResult, { ...SAMPLES.result, data: { ...IV_DATA, v: [0, '600', 700] } }, 'data.v[1]: must be a finite number'],
    ['IV voltage out of bounds', validateControlResult, { ...SAMPLES.result, data: { ...IV_DATA, v: [0, 600, 7000] } }, 'data.v[2]: must be within -50..2000 (got 7000)'],
    ['IV current out of bounds', validateControlResult, { ...SAMPLES.result, data: { ...IV_DATA, i: [1e6, 9, 0] } }, 'data.i[0]: must be within -50..1000'],
    ['IV string 0', validateControlResult, { ...SAMPLES.result, data: { ...IV_DATA, string: 0 } }, 'data.string: must be >= 1'],
    ['IV irradiance', validateControlResult, { ...SAMPLES.result, data: { ...IV_DATA, irradiance: -5 } }, 'data.irradiance: must be >= 0'],
    ['device failures', validateDeviceStatus, { ...SAMPLES.device, consecutiveFailures: 1.5 }, 'consecutiveFailures: must be an integer'],
    ['health metrics missing', validateComponentHealth, { ...SAMPLES.health, metrics: undefined }, 'metrics: must be an object'],
    ['health models not an array', validateComponentHealth, { ...SAMPLES.health, models: { fault: '1.0.0' } }, 'models: must be an array'],
    ['health model without a version', validateComponentHealth, { ...SAMPLES.health, models: [{ name: 'fault' }] }, 'models[0].version: must be a string'],
    ['health connection state', validateComponentHealth, { ...SAMPLES.health, metrics: { ...metrics, connectionState: 'up' } }, 'metrics.connectionState: must be one of'],
    ['summary status', validateSiteHealthSummary, { ...SAMPLES.summary, status: 'fine' }, 'status: must be one of healthy|degraded|critical'],
    ['alarm transition', validateAlarm, { ...SAMPLES.journaled, transition: 'raise' }, 'transition: must be one of raised|updated|cleared'],
    ['alarm transition counter', validateAlarm, { ...SAMPLES.journaled, transitionSeq: -1 }, 'transitionSeq: must be >= 0'],
    ['alarm journal position', validateAlarm, { ...SAMPLES.journaled, sourceSeq: 0 }, 'sourceSeq: must be >= 1'],
    ['sync position', validateAlarmSyncRequest, { ...SAMPLES.sync, from: { processor: { journalId: 'j-1' } } }, 'from.processor.seq: must be a finite number'],
    ['snapshot page', validateAlarmSnapshot, { ...SAMPLES.snapshot, page: 2 }, 'page: must be <= 1'],
    ['snapshot alarm', validateAlarmSnapshot, { ...SAMPLES.snapshot, active: [{ ...SAMPLES.alarm, severity: 'urgent' }] }, 'active[0]: severity: must be one of'],
    ['decision outcome', validateControlDecision, { ...SAMPLES.decision, outcome: 'done' }, 'outcome: must be one of'],
    ['decision input source', validateControlDecision, { ...SAMPLES.decision, inputs: [{ source: 'guess', ref: 'x', value: 1, ts: TS }] }, 'inputs[0].source: must be one of'],
    ['operator request without asset', validateOperatorRequest, { ...SAMPLES.operator, assetId: undefined }, 'assetId: must be a string'],
    ['acknowledge without alarm', validateOperatorRequest, { ...SAMPLES.operator, action: 'acknowledge', assetId: undefined }, 'alarmId: must be a string'],
    ['commit range backwards', validateStoreCommitNotice, { ...SAMPLES.commits, ranges: [{ assetId: 'inv-01', from: TS, to: TS - 1, samples: 1 }] }, 'ranges[0].to: must be >='],
  ])('rejects %s with a reason', (_name, validate, input, reason) => {
    const v = validate(input);
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.reason).toContain(reason);
      expect(v.code).toBe('invalid_payload');
    }
  });

  test('unknown fields pass (additive evolution within one schemaVersion)', () => {
    expect(validateTelemetry({ ...t, newField: 1 }).ok).toBe(true);
  });
});

describe('components and accessControl', () => {
  test('the nine components of dCMMS Edge are declared with unique short names', () => {
    expect(COMPONENTS.map((c) => c.name)).toEqual([...COMPONENT_NAMES]);
    expect(COMPONENT_NAMES).toHaveLength(9);
    expect(new Set(COMPONENTS.map((c) => c.short)).size).toBe(9);
    expect(COMPONENTS.filter((c) => c.implemented).map((c) => c.name)).toContain('com.dcmms.edge.Health');
  });

  test.each([...COMPONENT_NAMES])('%s: accessControl grants exactly what COMPONENT_TOPICS declares', (name) => {
    const ac = accessControlFor(name);
    const grants = (service: string, op: string): string[] =>
      Object.values(ac[service] ?? {})
        .filter((p) => p.operations.includes(op))
        .flatMap((p) => p.resources)
        .sort();
    const t = COMPONENT_TOPICS[name];
    expect(grants(PUBSUB_SERVICE, OPERATIONS.publishToTopic)).toEqual([...t.pubsub.publish].sort());
    expect(grants(PUBSUB_SERVICE, OPERATIONS.subscribeToTopic)).toEqual([...t.pubsub.subscribe].sort());
    expect(grants(MQTTPROXY_SERVICE, OPERATIONS.publishToIoTCore)).toEqual([...t.mqttproxy.publish].sort());
    expect(grants(MQTTPROXY_SERVICE, OPERATIONS.subscribeToIoTCore)).toEqual([...t.mqttproxy.subscribe].sort());
    expect(Object.keys(ac).every((s) => s === PUBSUB_SERVICE || s === MQTTPROXY_SERVICE)).toBe(true);
    for (const [service, policies] of Object.entries(ac)) {
      for (const [id, p] of Object.entries(policies)) {
        expect(id.startsWith(`${name}:${service === PUBSUB_SERVICE ? 'pubsub' : 'mqttproxy'}:`)).toBe(true);
        expect(p.operations).toHaveLength(1);
        expect(p.operations[0]).not.toBe('*');
        expect(p.resources.length).toBeGreaterThan(0);
        for (const r of p.resources) {
          expect(r).not.toBe('*');
          expect(r).not.toBe('#');
          expect(r.startsWith(service === PUBSUB_SERVICE ? 'site/' : 'dcmms/')).toBe(true);
        }
      }
    }
  });

  test('policy ids are unique across components', () => {
    const ids = COMPONENT_NAMES.flatMap((n) => Object.values(accessControlFor(n)).flatMap((p) => Object.keys(p)));
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('every component may publish its own health report and no one else’s', () => {
    for (const c of COMPONENTS) {
      const pub = COMPONENT_TOPICS[c.name].pubsub.publish;
      expect(pub.some((r) => pubsubAllows(r, topics.componentHealth('s1', c.short)))).toBe(true);
      for (const other of COMPONENTS.filter((o) => o.short !== c.short)) {
        expect(pub.some((r) => pubsubAllows(r, topics.componentHealth('s1', other.short)))).toBe(false);
      }
    }
  });

  test('Health: the policies allow what it does and deny the rest, under Greengrass matching rules', () => {
    const name: ComponentName = 'com.dcmms.edge.Health';
    const t = COMPONENT_TOPICS[name];
    const canPublish = (x: string): boolean => t.pubsub.publish.some((r) => pubsubAllows(r, x));
    const canSubscribe = (x: string): boolean => t.pubsub.subscribe.some((r) => pubsubAllows(r, x));
    const canIot = (x: string): boolean => t.mqttproxy.publish.some((r) => mqttAllows(r, x));
    expect(canPublish(topics.healthSummary('s1'))).toBe(true);
    expect(canPublish(topics.componentHealth('s1', 'health'))).toBe(true);
    expect(canSubscribe(filters.componentHealth('s1').filter)).toBe(true);
    expect(canIot(iotTopics.health('s1'))).toBe(true);
    expect(canPublish(topics.rawTelemetry('s1', 'a'))).toBe(false);
    expect(canPublish(topics.controlCommand('s1', 'a'))).toBe(false);
    expect(canSubscribe(filters.rawTelemetry('s1').filter)).toBe(false);
    expect(canIot(iotTopics.alarms('s1'))).toBe(false);
    expect(t.mqttproxy.subscribe).toEqual([]);
  });
});
