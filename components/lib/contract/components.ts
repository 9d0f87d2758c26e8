/**
 * The nine components of dCMMS Edge (README.md "Components"; all nine implemented) and, as data, what each publishes and subscribes on local pub/sub and IoT Core. The
 * recipes' accessControl is generated from this table (access-control.ts), and a test keeps the two
 * equal, so a component can reach exactly the topics declared here and nothing else (least
 * privilege; docs/conventions.md "Avoid": wildcard accessControl).
 */
import { mqttResource, pubsubResource, type IotFamily, type LocalFamily } from './topics';

export const COMPONENT_NAMES = [
  'com.dcmms.edge.ModbusAdapter',
  'com.dcmms.edge.Processor',
  'com.dcmms.edge.Aggregator',
  'com.dcmms.edge.Analytics',
  'com.dcmms.edge.MLInference',
  'com.dcmms.edge.LocalControl',
  'com.dcmms.edge.Health',
  'com.dcmms.edge.Uplink',
  'com.dcmms.edge.LocalHmi',
] as const;
export type ComponentName = (typeof COMPONENT_NAMES)[number];

/** The meta component whose HARD dependencies are every implemented component. */
export const SITE_COMPONENT_NAME = 'com.dcmms.edge.Site';

/** Topic access in policy-resource form (pubsub: `+`/`#` literal, `*` a glob; mqttproxy: MQTT wildcards; see topics.ts). */
export interface ComponentTopics {
  readonly pubsub: { readonly publish: readonly string[]; readonly subscribe: readonly string[] };
  readonly mqttproxy: { readonly publish: readonly string[]; readonly subscribe: readonly string[] };
}

export interface ComponentDecl {
  readonly name: ComponentName;
  /** Used in topics (`site/{siteId}/health/{short}`) and logs. */
  readonly short: string;
  /** Folder under components/. */
  readonly dir: string;
  /** Built and shipped now; the others are declared so the contract is complete. */
  readonly implemented: boolean;
  readonly description: string;
  readonly topics: ComponentTopics;
}

type LocalUse = LocalFamily | readonly [LocalFamily, Readonly<Record<string, string>>];

interface DeclInput {
  name: ComponentName;
  short: string;
  implemented: boolean;
  description: string;
  publish?: readonly LocalUse[];
  subscribe?: readonly LocalUse[];
  iotPublish?: readonly IotFamily[];
  iotSubscribe?: readonly IotFamily[];
}

function resources(uses: readonly LocalUse[]): string[] {
  const out = uses.map((u) => (typeof u === 'string' ? pubsubResource(u) : pubsubResource(u[0], u[1])));
  return Array.from(new Set(out));
}

function declare(d: DeclInput): ComponentDecl {
  // Every component publishes its own health report, on its own short name only.
  const publish: LocalUse[] = [...(d.publish ?? []), ['componentHealth', { component: d.short }]];
  return {
    name: d.name,
    short: d.short,
    dir: d.short,
    implemented: d.implemented,
    description: d.description,
    topics: {
      pubsub: { publish: resources(publish), subscribe: resources(d.subscribe ?? []) },
      mqttproxy: {
        publish: Array.from(new Set((d.iotPublish ?? []).map((f) => mqttResource(f)))),
        subscribe: Array.from(new Set((d.iotSubscribe ?? []).map((f) => mqttResource(f)))),
      },
    },
  };
}

export const COMPONENTS: readonly ComponentDecl[] = Object.freeze([
  declare({
    name: 'com.dcmms.edge.ModbusAdapter',
    short: 'modbus-adapter',
    implemented: true,
    description: 'Owns every Modbus connection; polls devices, SunSpec discovery; publishes raw telemetry and device status; executes control commands.',
    publish: ['rawTelemetry', 'deviceStatus', 'controlResult'],
    subscribe: ['controlCommand'],
  }),
  declare({
    name: 'com.dcmms.edge.Processor',
    short: 'processor',
    implemented: true,
    description: 'Validates, converts, de-duplicates and interpolates raw telemetry; stores it; evaluates alarm rules (device status: communication loss, asset list).',
    publish: ['processedTelemetry', 'alarms', ['alarmSnapshot', { source: 'processor' }], 'storeCommits'],
    subscribe: ['rawTelemetry', 'deviceStatus', 'alarmSync'],
  }),
  declare({
    name: 'com.dcmms.edge.Aggregator',
    short: 'aggregator',
    implemented: true,
    description: '1-minute, 15-minute and daily (site time zone) rollups of the Processor store; late data re-aggregated; daily summary.',
    publish: ['aggregates', 'dailySummary'],
    // Late data and units come from the store itself (its late log and series list), announced by
    // the Processor's commit notices: no processed telemetry (docs/aggregator.md "Late data").
    subscribe: ['storeCommits'],
  }),
  declare({
    name: 'com.dcmms.edge.Analytics',
    short: 'analytics',
    implemented: true,
    description: 'Performance ratio, health score, string imbalance, IV curve, tracker deviation, soiling.',
    // An alarm source (low_pr, tracker_misalignment...): journal, snapshot and sync like the
    // Processor. It reads the Processor's store itself (commit notices announce late data), and
    // asks the adapters for IV-curve scans (control command, result with the curve).
    publish: ['analytics', 'alarms', ['alarmSnapshot', { source: 'analytics' }], 'controlCommand'],
    // Every source's alarms and snapshots: the health score's alarm history per asset.
    subscribe: ['processedTelemetry', 'storeCommits', 'alarmSync', 'controlResult', 'alarms', 'alarmSnapshot'],
  }),
  declare({
    name: 'com.dcmms.edge.MLInference',
    short: 'ml-inference',
    implemented: true,
    description: 'ONNX fault probability, anomaly score and 4-hour generation forecast.',
    publish: ['mlResult', 'alarms', ['alarmSnapshot', { source: 'ml-inference' }]],
    subscribe: ['processedTelemetry', 'storeCommits', 'alarmSync'],
  }),
  declare({
    name: 'com.dcmms.edge.LocalControl',
    short: 'local-control',
    implemented: true,
    description: 'Automated responses with interlocks, revert timers and an audit log; local alarm outputs.',
    // An alarm source itself (control_failed): journal, snapshot and sync like the Processor.
    publish: ['controlCommand', 'controlDecision', 'alarms', ['alarmSnapshot', { source: 'local-control' }], 'alarmSync'],
    subscribe: ['alarms', 'alarmSnapshot', 'alarmSync', 'processedTelemetry', 'analytics', 'mlResult', 'controlResult', 'deviceStatus', 'operatorRequest'],
  }),
  declare({
    name: 'com.dcmms.edge.Health',
    short: 'health',
    implemented: true,
    description: 'Collects every component health report and gateway figures; publishes a site health summary locally and to IoT Core.',
    publish: ['healthSummary'],
    subscribe: ['componentHealth'],
    iotPublish: ['health'],
  }),
  declare({
    name: 'com.dcmms.edge.Uplink',
    short: 'uplink',
    implemented: true,
    description: 'Durable store-and-forward to the cloud: priorities, batching, gzip, backoff; IoT Core and S3 exporters (Stream Manager can be added behind the same interface).',
    publish: ['alarmSync'],
    subscribe: ['alarms', 'alarmSnapshot', 'aggregates', 'dailySummary', 'controlResult', 'controlDecision', 'deviceStatus', 'healthSummary', 'analytics', 'mlResult'],
    iotPublish: ['alarms', 'telemetry', 'events', 'uplinkStatus'],
  }),
  declare({
    name: 'com.dcmms.edge.LocalHmi',
    short: 'local-hmi',
    implemented: true,
    description: 'The operator screen on the gateway (HTTPS, no cloud needed): live values, alarms, trends, health; acknowledge and control through LocalControl.',
    // Publishes operator requests only (LocalControl decides and acts) and asks the alarm sources
    // for their state at start. Reads the live picture, the alarm sources' snapshots, LocalControl's
    // decisions (a control request's outcome) and other operators' requests (an acknowledge from the
    // CLI or a push-button shows on the screen). The Processor's store and the Aggregator's
    // rollups it reads from their files, read-only.
    publish: ['operatorRequest', 'alarmSync'],
    subscribe: ['processedTelemetry', 'alarms', 'alarmSnapshot', 'deviceStatus', 'componentHealth', 'healthSummary', 'controlDecision', 'operatorRequest'],
  }),
]);

const BY_NAME = new Map<string, ComponentDecl>(COMPONENTS.map((c) => [c.name, c]));

export function isComponentName(v: unknown): v is ComponentName {
  return typeof v === 'string' && BY_NAME.has(v);
}

export function componentDecl(name: ComponentName): ComponentDecl {
  const d = BY_NAME.get(name);
  if (!d) throw new Error(`unknown component ${name}`);
  return d;
}

/** Per component, its topic access in policy-resource form. */
export const COMPONENT_TOPICS: Readonly<Record<ComponentName, ComponentTopics>> = Object.freeze(
  Object.fromEntries(COMPONENTS.map((c) => [c.name, c.topics])) as Record<ComponentName, ComponentTopics>,
);

export const IMPLEMENTED_COMPONENTS: readonly ComponentDecl[] = COMPONENTS.filter((c) => c.implemented);
