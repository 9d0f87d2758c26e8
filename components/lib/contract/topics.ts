/**
 * Topic names: the only place topic strings are spelled (docs/conventions.md "The contract").
 *
 * Local pub/sub topics start from the specification's `site/{siteId}/scada/{assetId}/telemetry`
 * and `.../alarms` (dCMMS edge specification §3.1 step 2, ingestion; docs/specification.md);
 * everything else lives under
 * `site/{siteId}/...` too. IoT Core topics start with `dcmms/{siteId}/...` so cloud IoT policies
 * can be scoped per site and per thing.
 *
 * Each topic family is a template. From one template we derive:
 *  - the concrete topic a publisher uses (`topics.x(...)`), typed with its payload;
 *  - the filter a subscriber uses (`filters.x(siteId)`: site fixed, other variables `+`), carrying
 *    the payload's runtime validator;
 *  - the accessControl resource (`pubsubResource` / `mqttResource`, see access-control.ts).
 */
import type {
  AggregateInterval,
  AggregateMessage,
  AlarmMessage,
  AlarmSnapshot,
  AlarmSyncRequest,
  AnalyticsKind,
  AnalyticsMessage,
  ComponentHealth,
  ControlCommand,
  ControlDecision,
  ControlResult,
  DailySummary,
  DeviceStatus,
  MlModel,
  MlResult,
  OperatorRequest,
  SiteHealthSummary,
  StoreCommitNotice,
  TelemetryMessage,
  UplinkBatch,
  UplinkStatus,
} from './payloads';
import { ID_PATTERN, isTopicId, type Validator } from './check';
import {
  validateAggregate,
  validateAlarm,
  validateAlarmSnapshot,
  validateAlarmSyncRequest,
  validateAnalytics,
  validateComponentHealth,
  validateControlCommand,
  validateControlDecision,
  validateControlResult,
  validateDailySummary,
  validateDeviceStatus,
  validateMlResult,
  validateOperatorRequest,
  validateSiteHealthSummary,
  validateStoreCommitNotice,
  validateTelemetry,
} from './validators';

export const LOCAL_TOPIC_TEMPLATES = {
  rawTelemetry: 'site/{siteId}/scada/{assetId}/telemetry',
  alarms: 'site/{siteId}/scada/{assetId}/alarms',
  processedTelemetry: 'site/{siteId}/processed/{assetId}/telemetry',
  aggregates: 'site/{siteId}/aggregates/{interval}/{assetId}',
  analytics: 'site/{siteId}/analytics/{assetId}/{kind}',
  mlResult: 'site/{siteId}/ml/{assetId}/{model}',
  controlCommand: 'site/{siteId}/control/{assetId}/command',
  controlResult: 'site/{siteId}/control/{assetId}/result',
  deviceStatus: 'site/{siteId}/devices/{assetId}/status',
  componentHealth: 'site/{siteId}/health/{component}',
  // Not under health/{component}: a `site/x/health/+` subscriber must see component reports only.
  healthSummary: 'site/{siteId}/summary/health',
  /** The Aggregator's daily summary (payloads.ts DailySummary). */
  dailySummary: 'site/{siteId}/summary/daily',
  /** Alarm consumers ask the alarm sources for their state and missed transitions (docs/alarms.md). */
  alarmSync: 'site/{siteId}/alarms/sync',
  /** One alarm source's active alarms and journal position. */
  alarmSnapshot: 'site/{siteId}/alarms/state/{source}',
  /** The Processor's commit notices: which samples of which assets a store commit made durable. */
  storeCommits: 'site/{siteId}/store/commits',
  /** LocalControl's audit of each decision step. */
  controlDecision: 'site/{siteId}/control/{assetId}/decision',
  /** Operators' requests to LocalControl (HMI, CLI, acknowledge input). */
  operatorRequest: 'site/{siteId}/operator/requests',
} as const;

export const IOT_TOPIC_TEMPLATES = {
  alarms: 'dcmms/{siteId}/alarms',
  telemetry: 'dcmms/{siteId}/telemetry/{interval}',
  health: 'dcmms/{siteId}/health',
  events: 'dcmms/{siteId}/events',
  uplinkStatus: 'dcmms/{siteId}/uplink/status',
} as const;

export type LocalFamily = keyof typeof LOCAL_TOPIC_TEMPLATES;
export type IotFamily = keyof typeof IOT_TOPIC_TEMPLATES;

/** Payload type carried by each local family. */
export interface LocalPayloads {
  rawTelemetry: TelemetryMessage;
  alarms: AlarmMessage;
  processedTelemetry: TelemetryMessage;
  aggregates: AggregateMessage;
  analytics: AnalyticsMessage;
  mlResult: MlResult;
  controlCommand: ControlCommand;
  controlResult: ControlResult;
  deviceStatus: DeviceStatus;
  componentHealth: ComponentHealth;
  healthSummary: SiteHealthSummary;
  dailySummary: DailySummary;
  alarmSync: AlarmSyncRequest;
  alarmSnapshot: AlarmSnapshot;
  storeCommits: StoreCommitNotice;
  controlDecision: ControlDecision;
  operatorRequest: OperatorRequest;
}
export interface IotPayloads {
  alarms: UplinkBatch;
  telemetry: UplinkBatch;
  health: SiteHealthSummary;
  events: UplinkBatch;
  uplinkStatus: UplinkStatus;
}

const LOCAL_VALIDATORS: { [F in LocalFamily]: Validator<LocalPayloads[F]> } = {
  rawTelemetry: validateTelemetry,
  alarms: validateAlarm,
  processedTelemetry: validateTelemetry,
  aggregates: validateAggregate,
  analytics: validateAnalytics,
  mlResult: validateMlResult,
  controlCommand: validateControlCommand,
  controlResult: validateControlResult,
  deviceStatus: validateDeviceStatus,
  componentHealth: validateComponentHealth,
  healthSummary: validateSiteHealthSummary,
  dailySummary: validateDailySummary,
  alarmSync: validateAlarmSyncRequest,
  alarmSnapshot: validateAlarmSnapshot,
  storeCommits: validateStoreCommitNotice,
  controlDecision: validateControlDecision,
  operatorRequest: validateOperatorRequest,
};

declare const payloadBrand: unique symbol;
/** A concrete local topic, branded with the payload type it carries (so `bus.publish` is typed). */
export type Topic<P> = string & { readonly [payloadBrand]: P };
/** A concrete IoT Core topic, branded likewise. */
export type IotTopic<P> = string & { readonly [payloadBrand]: P; readonly __iot: true };

/** What a subscriber passes to `bus.subscribe`: the filter string plus the payload's validator. */
export interface TopicFilter<P> {
  readonly family: string;
  readonly filter: string;
  readonly validate: Validator<P>;
}

/** Thrown by the builders for ids that cannot be a topic level; a caller bug or bad config. */
export class TopicError extends Error {
  readonly code = 'TOPIC_INVALID';
}

type Vars = Readonly<Record<string, string>>;

function fill(template: string, vars: Vars, wildcard?: string): string {
  return template.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const v = vars[name];
    if (v === undefined) {
      if (wildcard !== undefined) return wildcard;
      throw new TopicError(`topic ${template}: missing ${name}`);
    }
    if (!isTopicId(v)) throw new TopicError(`topic ${template}: ${name} ${JSON.stringify(v)} must match ${ID_PATTERN.source}`);
    return v;
  });
}

/** Variable names of a template, in order. */
export function templateVars(template: string): string[] {
  return Array.from(template.matchAll(/\{(\w+)\}/g), (m) => m[1] ?? '');
}

function local<F extends LocalFamily>(family: F, vars: Vars): Topic<LocalPayloads[F]> {
  return fill(LOCAL_TOPIC_TEMPLATES[family], vars) as Topic<LocalPayloads[F]>;
}

function iot<F extends IotFamily>(family: F, vars: Vars): IotTopic<IotPayloads[F]> {
  return fill(IOT_TOPIC_TEMPLATES[family], vars) as IotTopic<IotPayloads[F]>;
}

/** Concrete local topics for publishers. */
export const topics = {
  rawTelemetry: (siteId: string, assetId: string) => local('rawTelemetry', { siteId, assetId }),
  alarms: (siteId: string, assetId: string) => local('alarms', { siteId, assetId }),
  processedTelemetry: (siteId: string, assetId: string) => local('processedTelemetry', { siteId, assetId }),
  aggregates: (siteId: string, interval: AggregateInterval, assetId: string) => local('aggregates', { siteId, interval, assetId }),
  analytics: (siteId: string, assetId: string, kind: AnalyticsKind) => local('analytics', { siteId, assetId, kind }),
  mlResult: (siteId: string, assetId: string, model: MlModel) => local('mlResult', { siteId, assetId, model }),
  controlCommand: (siteId: string, assetId: string) => local('controlCommand', { siteId, assetId }),
  controlResult: (siteId: string, assetId: string) => local('controlResult', { siteId, assetId }),
  deviceStatus: (siteId: string, assetId: string) => local('deviceStatus', { siteId, assetId }),
  /** `component` is the short name (`health`, `modbus-adapter`), see COMPONENTS. */
  componentHealth: (siteId: string, component: string) => local('componentHealth', { siteId, component }),
  healthSummary: (siteId: string) => local('healthSummary', { siteId }),
  dailySummary: (siteId: string) => local('dailySummary', { siteId }),
  alarmSync: (siteId: string) => local('alarmSync', { siteId }),
  /** `source` is the alarm source's short name (`processor`). */
  alarmSnapshot: (siteId: string, source: string) => local('alarmSnapshot', { siteId, source }),
  storeCommits: (siteId: string) => local('storeCommits', { siteId }),
  controlDecision: (siteId: string, assetId: string) => local('controlDecision', { siteId, assetId }),
  operatorRequest: (siteId: string) => local('operatorRequest', { siteId }),
} as const;

/**
 * Every IoT Core topic of the bundle, for a cloud-side observer (the demo's "cloud view", tests
 * acting as the cloud). Components never subscribe to it: their policies are per site.
 */
export const IOT_ALL_TOPICS_FILTER = 'dcmms/#';

/** Concrete IoT Core topics. */
export const iotTopics = {
  alarms: (siteId: string) => iot('alarms', { siteId }),
  telemetry: (siteId: string, interval: AggregateInterval) => iot('telemetry', { siteId, interval }),
  health: (siteId: string) => iot('health', { siteId }),
  events: (siteId: string) => iot('events', { siteId }),
  uplinkStatus: (siteId: string) => iot('uplinkStatus', { siteId }),
} as const;

/**
 * Subscriber filter for a family: `siteId` fixed, every variable not given in `fixed` is `+`.
 * E.g. `filterFor('rawTelemetry', 's1')` is `site/s1/scada/+/telemetry`.
 */
export function filterFor<F extends LocalFamily>(family: F, siteId: string, fixed: Vars = {}): TopicFilter<LocalPayloads[F]> {
  return {
    family,
    filter: fill(LOCAL_TOPIC_TEMPLATES[family], { ...fixed, siteId }, '+'),
    validate: LOCAL_VALIDATORS[family],
  };
}

/** Convenience filters with every non-site variable wildcarded. */
export const filters = {
  rawTelemetry: (siteId: string) => filterFor('rawTelemetry', siteId),
  alarms: (siteId: string) => filterFor('alarms', siteId),
  processedTelemetry: (siteId: string) => filterFor('processedTelemetry', siteId),
  aggregates: (siteId: string, interval?: AggregateInterval) => filterFor('aggregates', siteId, interval ? { interval } : {}),
  analytics: (siteId: string) => filterFor('analytics', siteId),
  mlResult: (siteId: string) => filterFor('mlResult', siteId),
  controlCommand: (siteId: string) => filterFor('controlCommand', siteId),
  controlResult: (siteId: string) => filterFor('controlResult', siteId),
  deviceStatus: (siteId: string) => filterFor('deviceStatus', siteId),
  componentHealth: (siteId: string) => filterFor('componentHealth', siteId),
  healthSummary: (siteId: string) => filterFor('healthSummary', siteId),
  dailySummary: (siteId: string) => filterFor('dailySummary', siteId),
  alarmSync: (siteId: string) => filterFor('alarmSync', siteId),
  alarmSnapshot: (siteId: string) => filterFor('alarmSnapshot', siteId),
  storeCommits: (siteId: string) => filterFor('storeCommits', siteId),
  controlDecision: (siteId: string) => filterFor('controlDecision', siteId),
  operatorRequest: (siteId: string) => filterFor('operatorRequest', siteId),
} as const;

export function validatorFor<F extends LocalFamily>(family: F): Validator<LocalPayloads[F]> {
  return LOCAL_VALIDATORS[family];
}

/**
 * Policy resource for `aws.greengrass.ipc.pubsub`. There `+` and `#` are literal and `*` is a glob
 * matching any characters including `/` (Greengrass Developer Guide, "Authorize components to
 * perform IPC operations"; nucleus authorization/WildcardTrie.java), so every variable not fixed
 * becomes `*`. One resource covers both publishing concrete topics and subscribing with `+` filters
 * (the glob matches a literal `+`).
 */
export function pubsubResource(family: LocalFamily, fixed: Vars = {}): string {
  return fill(LOCAL_TOPIC_TEMPLATES[family], fixed, '*');
}

/** Policy resource for `aws.greengrass.ipc.mqttproxy`, where `+`/`#` are MQTT wildcards (same guide page). */
export function mqttResource(family: IotFamily, fixed: Vars = {}): string {
  return fill(IOT_TOPIC_TEMPLATES[family], fixed, '+');
}

export interface ParsedTopic {
  readonly family: LocalFamily;
  readonly vars: Readonly<Record<string, string>>;
}

/** Which local family a concrete topic belongs to, with its variables; undefined if none. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const levels = topic.split('/');
  for (const family of Object.keys(LOCAL_TOPIC_TEMPLATES) as LocalFamily[]) {
    const tpl = LOCAL_TOPIC_TEMPLATES[family].split('/');
    if (tpl.length !== levels.length) continue;
    const vars: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < tpl.length && ok; i++) {
      const t = tpl[i] ?? '';
      const l = levels[i] ?? '';
      const m = /^\{(\w+)\}$/.exec(t);
      if (m) {
        if (isTopicId(l)) vars[m[1] ?? ''] = l;
        else ok = false;
      } else ok = t === l;
    }
    if (ok) return { family, vars };
  }
  return undefined;
}
