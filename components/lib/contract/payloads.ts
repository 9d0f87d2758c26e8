/**
 * Payload types of the contract. Every payload carries `schemaVersion` (= CONTRACT_VERSION): a
 * consumer rejects a version it does not know instead of misreading it. Within one version the
 * contract only grows by optional fields. Times are milliseconds since the epoch, durations are
 * `...Ms`, units travel with values.
 */

/**
 * The contract's major version. Bump it only for a breaking change (a renamed or retyped field, a
 * moved topic); additive optional fields keep it.
 */
export const CONTRACT_VERSION = 1 as const;
export type SchemaVersion = typeof CONTRACT_VERSION;

/**
 * Quality of one point value, chosen after OPC UA's Good/Uncertain/Bad status classes plus the two
 * cases this pipeline produces itself:
 *  - `good`: read from the device and plausible;
 *  - `uncertain`: read, but suspect (out of the configured range, stale timestamp, device flagged it);
 *  - `bad`: the read failed or the value is unusable (`v` is then usually null);
 *  - `not_implemented`: the device does not implement the point (SunSpec "not implemented"
 *    sentinels such as 0x8000 for int16 / 0xFFFF for uint16);
 *  - `interpolated`: filled in by the Processor's short-gap interpolation, not measured.
 */
export const QUALITIES = ['good', 'uncertain', 'bad', 'not_implemented', 'interpolated'] as const;
export type Quality = (typeof QUALITIES)[number];

export type PointValue = number | string | boolean | null;

export interface Point {
  /** The value; null when there is none (a bad read). */
  v: PointValue;
  /** Unit (UCUM-style short form: W, kW, V, A, Hz, Cel, W/m2, %, Wh). Omitted for unitless values. */
  u?: string;
  q: Quality;
}

/** One poll of one asset: many points sampled together (docs/conventions.md "The contract"). */
export interface TelemetryMessage {
  schemaVersion: SchemaVersion;
  siteId: string;
  assetId: string;
  /** Sample time, ms since epoch. */
  ts: number;
  /** Per-asset sequence number from the producer; lets consumers drop duplicates and see gaps. */
  seq: number;
  points: Record<string, Point>;
}

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const ALARM_STATES = ['raised', 'cleared'] as const;
export type AlarmState = (typeof ALARM_STATES)[number];

/** An alarm transition (dCMMS edge specification §3.2 alarm checks, §4.2 analytics alarms; docs/specification.md). */
export interface AlarmMessage {
  schemaVersion: SchemaVersion;
  siteId: string;
  assetId: string;
  /** Stable id of this alarm instance; the `cleared` message repeats the `raised` one's id. */
  alarmId: string;
  /** Rule or condition, snake_case: `over_temperature`, `low_pr`, `string_fault`, `predicted_fault`... */
  type: string;
  severity: Severity;
  state: AlarmState;
  ts: number;
  /** Short name of the component that raised it (`processor`, `analytics`...). */
  source: string;
  point?: string;
  value?: number | null;
  threshold?: number;
  message?: string;
  details?: Record<string, unknown>;
  /**
   * Which transition of the alarm this is: its raise, an update of a raised alarm (the value moved
   * on, same alarmId), or its clear. `state` says raised/cleared alone, so an update would otherwise
   * look like a second raise.
   */
  transition?: AlarmTransition;
  /**
   * Per-alarm transition counter: 0 for the raise, +1 for each later transition. (alarmId,
   * transitionSeq) names one transition: consumers and the cloud de-duplicate on it.
   */
  transitionSeq?: number;
  /**
   * The source's alarm journal (docs/alarms.md): `journalId` names the journal (made with its file),
   * `sourceSeq` numbers every transition the source emitted, without gaps. A consumer that sees a
   * gap asks for the missing transitions on the alarm sync topic.
   */
  journalId?: string;
  sourceSeq?: number;
  /** True when this is a copy sent again from the journal (a replay or a snapshot), not a live transition. */
  replayed?: boolean;
}

export const ALARM_TRANSITIONS = ['raised', 'updated', 'cleared'] as const;
export type AlarmTransition = (typeof ALARM_TRANSITIONS)[number];

/**
 * `site/{siteId}/alarms/sync`: a consumer (the Uplink at start and when it sees a gap) asks every
 * alarm source for its state. Each source answers with an AlarmSnapshot and, for each entry in
 * `from`, replays its journal from that sequence number on the alarms topic (`replayed: true`).
 */
export interface AlarmSyncRequest {
  schemaVersion: SchemaVersion;
  siteId: string;
  ts: number;
  /** Short name of the asking component. */
  requester: string;
  /** Per source (short name): replay transitions of this journal from this sequence number on. */
  from?: Record<string, { journalId: string; seq: number }>;
}

/**
 * `site/{siteId}/alarms/state/{source}`: one alarm source's active alarms and journal position,
 * published periodically and in answer to a sync request. Large sets are split into pages.
 */
export interface AlarmSnapshot {
  schemaVersion: SchemaVersion;
  siteId: string;
  /** Short name of the alarm source (`processor`, `analytics`...). */
  source: string;
  ts: number;
  journalId: string;
  /** The newest transition's sourceSeq (0 if none yet) and the oldest one the journal still holds. */
  headSeq: number;
  oldestSeq: number;
  /** The latest transition of each active alarm (on this page). */
  active: AlarmMessage[];
  /** 1-based page number and page count of this snapshot. */
  page: number;
  pages: number;
  /** Set when this snapshot answers a sync request of this component. */
  requestedBy?: string;
}

/**
 * `site/{siteId}/store/commits`: the Processor, the store's only writer, tells readers which data a
 * commit made durable, so readers (Aggregator, Analytics, ML, HMI) learn of new and late samples
 * without scanning the store. One range per asset and stretch of time: samples of one asset more
 * than `gapMs` apart start a new range.
 */
export interface StoreCommitNotice {
  schemaVersion: SchemaVersion;
  siteId: string;
  /** Commit time (gateway clock). */
  ts: number;
  /** Counts commits of this Processor run; `runId` changes at each start, so a reader can tell a restart from a lost notice. */
  runId: string;
  seq: number;
  ranges: StoreCommitRange[];
  /**
   * The newest id of the store's late-data log (samples committed well after their time, kept in
   * the store itself; docs/store.md). A reader that has processed the log up to a lower id reads
   * the rest from the store: notices are the fast path, the log the durable one.
   */
  lateLogId?: number;
}

export interface StoreCommitRange {
  assetId: string;
  /** Oldest and newest sample time of the range, inclusive, ms since epoch. */
  from: number;
  to: number;
  /** Samples committed in the range. */
  samples: number;
}

export const AGGREGATE_INTERVALS = ['1m', '15m', '1d'] as const;
export type AggregateInterval = (typeof AGGREGATE_INTERVALS)[number];

/** Statistics of one point over one bucket (dCMMS edge specification §5.1 levels 2-4, docs/specification.md). */
export interface AggregateStats {
  count: number;
  min?: number;
  max?: number;
  avg?: number;
  stddev?: number;
  sum?: number;
  u?: string;
  /**
   * Daily buckets (`1d`) only: energy over the day in Wh. For a power series (unit `W`) the
   * integral of the 1-minute averages (W x 1/60 h per minute with data); for an energy counter
   * (unit `Wh`) its increase over the day (last - first). Aggregator, docs/aggregator.md.
   */
  energyWh?: number;
}

export interface AggregateMessage {
  schemaVersion: SchemaVersion;
  siteId: string;
  assetId: string;
  interval: AggregateInterval;
  /** Bucket start (inclusive) and end (exclusive), ms since epoch. */
  start: number;
  end: number;
  series: Record<string, AggregateStats>;
  /**
   * 0 for the first publication of a bucket; +1 each time late data changed it and it was
   * published again. The cloud keeps the highest revision of (siteId, assetId, interval, start).
   */
  revision?: number;
}

/** One asset's day in the daily summary (dCMMS edge specification §5.1 level 4, daily). */
export interface DailyAssetSummary {
  /** Energy of the day, Wh: the asset's energy counter increase if it has one, else its integrated power. */
  energyWh?: number;
  /** Peak and average of the asset's power point, W. */
  peakW?: number;
  avgW?: number;
  /** Series of the asset with samples that day, and their valued samples. */
  series: number;
  samples: number;
}

/**
 * The Aggregator's site-level summary of one local day on `site/{siteId}/summary/daily`, published
 * once the day is closed (specification §5.2: the daily job runs at 00:05) and again, with a higher
 * revision, if late data changes it. Per-series daily statistics travel as `1d` AggregateMessages.
 */
export interface DailySummary {
  schemaVersion: SchemaVersion;
  siteId: string;
  /** Local calendar day, YYYY-MM-DD, in `timeZone` (IANA). */
  day: string;
  timeZone: string;
  /** Local midnight to the next local midnight, ms since epoch; 23 or 25 h on DST change days. */
  start: number;
  end: number;
  revision: number;
  /** Sum of the assets' energyWh (assets without one are left out). */
  energyWh?: number;
  assets: Record<string, DailyAssetSummary>;
}

export const ANALYTICS_KINDS = [
  'performance_ratio',
  'performance_ratio_temp_corrected',
  'health_score',
  'string_imbalance',
  'iv_curve',
  'tracker_deviation',
  'soiling',
] as const;
export type AnalyticsKind = (typeof ANALYTICS_KINDS)[number];

/** One analytics result (dCMMS edge specification §4.1, docs/specification.md). */
export interface AnalyticsMessage {
  schemaVersion: SchemaVersion;
  siteId: string;
  assetId: string;
  kind: AnalyticsKind;
  ts: number;
  value: number | null;
  u?: string;
  details?: Record<string, unknown>;
}

export const ML_MODELS = ['fault', 'anomaly', 'forecast'] as const;
export type MlModel = (typeof ML_MODELS)[number];

/** One inference result (dCMMS edge specification §6.1, docs/specification.md). */
export interface MlResult {
  schemaVersion: SchemaVersion;
  siteId: string;
  assetId: string;
  model: MlModel;
  modelVersion: string;
  ts: number;
  /** fault: probability 0..1; anomaly: score -1..1 (lower = more anomalous). Absent for forecast. */
  score?: number;
  /** forecast: predicted values from `ts` on, one every `stepMs`. */
  forecast?: { stepMs: number; values: number[]; u?: string };
  inferenceMs: number;
}

/** `iv_scan` `{ string }`: a device with an IV tracer sweeps one string and the result carries the curve (`data`). */
export const CONTROL_ACTIONS = ['curtail', 'restore', 'isolate_string', 'reconnect_string', 'shutdown', 'start', 'write', 'iv_scan'] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

/** A command for the adapter that owns the asset (dCMMS edge specification §7.1 control actions, docs/specification.md). */
export interface ControlCommand {
  schemaVersion: SchemaVersion;
  siteId: string;
  assetId: string;
  commandId: string;
  ts: number;
  action: ControlAction;
  params: Record<string, number | string | boolean>;
  /** Short name of the issuing component. */
  issuedBy: string;
  reason?: string;
  /** The adapter must not execute the command after this time. */
  expiresAt?: number;
}

export const CONTROL_STATUSES = ['succeeded', 'failed', 'rejected', 'expired'] as const;
export type ControlStatus = (typeof CONTROL_STATUSES)[number];

/** Points an IV curve in a control result carries at most. */
export const IV_CURVE_MAX_POINTS = 1000;
export const CONTROL_RESULT_DATA_KINDS = ['iv_curve'] as const;

/** The curve an `iv_scan` measured: points from short circuit to open circuit. */
export interface IvCurveData {
  kind: 'iv_curve';
  /** The string scanned, 1-based (the command's `params.string`). */
  string: number;
  /** Volts, one per point (2..IV_CURVE_MAX_POINTS points). */
  v: number[];
  /** Amperes, as many as `v`. */
  i: number[];
  /** Plane-of-array irradiance at the scan (W/m2), when the device measures it. */
  irradiance?: number;
  /** Cell (module) temperature at the scan (C), when the device measures it. */
  temperature?: number;
}

/** What a command's result may carry besides its status; `kind` says which. */
export type ControlResultData = IvCurveData;

export interface ControlResult {
  schemaVersion: SchemaVersion;
  siteId: string;
  assetId: string;
  commandId: string;
  ts: number;
  status: ControlStatus;
  message?: string;
  durationMs?: number;
  /** What the command measured (`iv_scan`: the curve); only with status `succeeded`. */
  data?: ControlResultData;
}

/** One input a control decision was taken on, as LocalControl saw it. */
export interface DecisionInput {
  /** `alarm` (an active alarm), `value` (a processed telemetry point), `analytics`, `ml`, `operator`. */
  source: 'alarm' | 'value' | 'analytics' | 'ml' | 'operator';
  /** What it is: `INV-01/103.TmpCab`, an alarm id, an analytics kind... */
  ref: string;
  value: number | string | boolean | null;
  /** When it was measured or raised (ms since epoch). */
  ts: number;
  quality?: Quality;
}

export const DECISION_OUTCOMES = ['commanded', 'succeeded', 'failed', 'retrying', 'blocked', 'released'] as const;
export type DecisionOutcome = (typeof DECISION_OUTCOMES)[number];

/**
 * `site/{siteId}/control/{assetId}/decision`: LocalControl's audit of one step of one decision: a
 * rule (or an operator) wanted an action on an asset, and what came of it: `commanded` (sent to the
 * adapter), `succeeded` / `failed` / `retrying` (the adapter's result), `blocked` (an interlock
 * stopped it: `reason` names it), `released` (the condition went away and automation let go). The
 * Uplink forwards decisions to the cloud as events; LocalControl keeps them in its audit log.
 */
export interface ControlDecision {
  schemaVersion: SchemaVersion;
  siteId: string;
  assetId: string;
  ts: number;
  /** One id per decision; its later steps repeat it. */
  decisionId: string;
  /** The configured rule, or `operator`. */
  ruleId: string;
  action: ControlAction;
  params: Record<string, number | string | boolean>;
  inputs: DecisionInput[];
  outcome: DecisionOutcome;
  reason?: string;
  commandId?: string;
  attempt?: number;
  /** From the first input that made the rule fire to this step, ms. */
  latencyMs?: number;
}

export const OPERATOR_ACTIONS = ['manual', 'automatic', 'acknowledge', 'shutdown', 'start', 'curtail', 'restore'] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

/**
 * `site/{siteId}/operator/requests`: an operator's request to LocalControl (the local HMI, the
 * dcmms-edge CLI, an acknowledge push-button): take an asset out of automation (`manual`) or give
 * it back (`automatic`), acknowledge an alarm (silences the horn), or act on an asset directly.
 * LocalControl audits every request.
 */
export interface OperatorRequest {
  schemaVersion: SchemaVersion;
  siteId: string;
  ts: number;
  requestId: string;
  /** Who asked (a user name, `cli`, `io:ackButton`). */
  operator: string;
  action: OperatorAction;
  assetId?: string;
  alarmId?: string;
  params?: Record<string, number | string | boolean>;
  reason?: string;
}

export const DEVICE_STATES = ['online', 'degraded', 'offline'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export interface DeviceStatus {
  schemaVersion: SchemaVersion;
  siteId: string;
  assetId: string;
  ts: number;
  state: DeviceState;
  /** Last successful poll, ms since epoch; null if never. */
  lastSeen: number | null;
  consecutiveFailures: number;
  message?: string;
  /** SunSpec model ids the adapter discovered on the device, in chain order (ModbusAdapter). */
  models?: number[];
  /**
   * True when nothing changed and the adapter repeats the status on its heartbeat, so that a
   * consumer started later learns the site's devices. Consumers that record changes (the Uplink's
   * events) skip heartbeats.
   */
  heartbeat?: boolean;
}

export const CONNECTION_STATES = ['connecting', 'connected', 'disconnected', 'closed'] as const;
export type ConnectionState = (typeof CONNECTION_STATES)[number];

export interface LastError {
  code: string;
  message: string;
  at: number;
}

export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
  /** Samples in the window the percentiles were taken over. */
  samples: number;
}

/** The shared metrics vocabulary (docs/conventions.md "Logs and metrics"); see components/lib/metrics.ts. */
export interface MetricsSnapshot {
  messagesIn: number;
  messagesOut: number;
  errors: number;
  lastError: LastError | null;
  latencyMs: LatencySummary;
  /** Sum of `queues`. */
  queueDepth: number;
  queues: Record<string, number>;
  connectionState: ConnectionState;
  /** Rejected inputs per reason. */
  rejections: Record<string, number>;
  /** Dropped outputs per reason. */
  dropped: Record<string, number>;
}

export const COMPONENT_STATES = ['starting', 'running', 'degraded', 'stopping', 'errored'] as const;
export type ComponentState = (typeof COMPONENT_STATES)[number];

/** What every component publishes on `site/{siteId}/health/{component}` every `intervalMs`. */
export interface ComponentHealth {
  schemaVersion: SchemaVersion;
  siteId: string;
  /** Short name, e.g. `modbus-adapter`. */
  component: string;
  /** Full Greengrass name, e.g. `com.dcmms.edge.ModbusAdapter`. */
  componentName: string;
  version: string;
  state: ComponentState;
  ts: number;
  uptimeMs: number;
  /** How often this component reports; Health calls it stale after 3 missed intervals. */
  intervalMs: number;
  metrics: MetricsSnapshot;
  /**
   * The models in service (MLInference: one per kind, with its metadata version); absent from
   * components without models (an optional field: older consumers ignore it).
   */
  models?: ModelVersion[];
}

/** A model in service: its kind (`fault`, `anomaly`, `forecast`) and its metadata version. */
export interface ModelVersion {
  name: string;
  version: string;
}

export interface HealthIssue {
  severity: Severity;
  /** Stable code, e.g. COMPONENT_STALE, DISK_HIGH. */
  code: string;
  component?: string;
  message: string;
}

/** Gateway figures (dCMMS edge specification §8.2, system figures; docs/specification.md). */
export interface SystemHealth {
  cpuPercent: number | null;
  memoryPercent: number;
  diskPercent: number | null;
  loadAvg1m: number;
  uptimeS: number;
}

export interface ComponentSummary {
  component: string;
  componentName: string | null;
  version: string | null;
  state: ComponentState | 'missing';
  stale: boolean;
  /** When Health last received a report, ms since epoch; null if never. */
  lastReportAt: number | null;
  uptimeMs: number | null;
  metrics: MetricsSnapshot | null;
}

export const SITE_STATUSES = ['healthy', 'degraded', 'critical'] as const;
export type SiteStatus = (typeof SITE_STATUSES)[number];

/** Published by Health locally and to IoT Core every `reportIntervalMs` (specification §8.1: every 5 minutes). */
export interface SiteHealthSummary {
  schemaVersion: SchemaVersion;
  siteId: string;
  ts: number;
  status: SiteStatus;
  issues: HealthIssue[];
  components: ComponentSummary[];
  system: SystemHealth | null;
}

export const UPLINK_KINDS = ['alarms', 'telemetry', 'events'] as const;
export type UplinkKind = (typeof UPLINK_KINDS)[number];

/**
 * What Uplink sends to `dcmms/{siteId}/alarms|telemetry/{interval}|events`: a batch of contract
 * payloads (alarms, aggregates, control results, device status). Uplink may gzip the JSON; then the
 * MQTT payload is the gzip bytes and its contentType says so.
 */
export interface UplinkBatch {
  schemaVersion: SchemaVersion;
  siteId: string;
  kind: UplinkKind;
  interval?: AggregateInterval;
  /** Uplink's batch sequence number, for de-duplication in the cloud after a retry. */
  seq: number;
  /**
   * The outbox's id (a UUID made with the outbox file, so per gateway installation). Batch numbers
   * restart when an outbox is made anew; (outboxId, seq) never repeats, and is the cloud's
   * de-duplication key, the same on IoT Core as in S3 object keys (docs/uplink.md).
   */
  outboxId?: string;
  createdAt: number;
  items: unknown[];
}

export const UPLINK_EXPORTER_STATES = ['online', 'offline', 'disabled'] as const;
export type UplinkExporterState = (typeof UPLINK_EXPORTER_STATES)[number];

/** One exporter's connectivity, as the Uplink sees it. */
export interface UplinkExporterStatus {
  state: UplinkExporterState;
  /** Last confirmed delivery, ms since epoch; null if none since start. */
  lastSuccessAt: number | null;
  consecutiveFailures: number;
  /** When the next attempt is due while offline (backoff), ms since epoch. */
  nextAttemptAt: number | null;
  lastError: string | null;
  /** Batches still waiting for this exporter. */
  backlogBatches: number;
}

/**
 * The Uplink's connectivity report on `dcmms/{siteId}/uplink/status` (QoS 0). It doubles as the IoT
 * Core connectivity probe: the nucleus refuses QoS 0 publishes while offline (mqtt.spooler
 * keepQos0WhenOffline false), so a refused status publish means "offline". Locally the same state is in
 * the Uplink's component health (connectionState, queues, dropped).
 */
export interface UplinkStatus {
  schemaVersion: SchemaVersion;
  siteId: string;
  ts: number;
  exporters: Record<string, UplinkExporterStatus>;
  /** Outbox bytes (records + sealed batches) and its bound. */
  outboxBytes: number;
  maxOutboxBytes: number;
  /** Records and batches waiting, by priority class. */
  backlog: Record<string, number>;
  /** Records dropped by the overflow and age policy, by `overflow_<class>` / `expired_<class>`. */
  dropped: Record<string, number>;
  /** Raw JSON bytes / gzip bytes over every sealed batch since start. */
  compressionRatio: number | null;
}
