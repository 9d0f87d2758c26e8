/**
 * com.dcmms.edge.LocalControl configuration: one schema, one defaults object (docs/conventions.md
 * "Configuration"); the recipe's DefaultConfiguration equals LOCAL_CONTROL_DEFAULTS (a test
 * checks). The schema says which keys and types exist; what depends on a rule's action or
 * condition source (which parameters a curtailment needs, that a shutdown is never released) is
 * checked by `compileRules` (rules.ts), which throws a ConfigError naming the key, e.g.
 * `rules[2].params.percent`. Decisions and defaults: docs/local-control.md.
 */
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, type BaseConfig, type ConfigSpec, type JsonSchema } from '../lib/config';
import { ANALYTICS_KINDS, SEVERITIES, type AnalyticsKind, type Severity } from '../lib/contract';
import { ConfigError } from '../lib/errors';
import { TRANSITION_ROUTES, type TransitionRoute } from './outputs/routing';
import { checkNotifyConfig } from './notify-options';
import { compileRules } from './rules';

export const CONDITION_SOURCES = ['alarm', 'value', 'analytics', 'ml'] as const;
export type ConditionSource = (typeof CONDITION_SOURCES)[number];

/** `above`/`below` a number; `hasBit`: a bitfield (`open|insulationFault`) has the bit; `equals` a boolean, string or number. */
export const VALUE_OPS = ['above', 'below', 'hasBit', 'equals'] as const;
export type ValueOp = (typeof VALUE_OPS)[number];

/** A test on one processed telemetry point, also used as a `while` guard of a condition. */
export interface ValueTest {
  assets?: string[];
  points?: string[];
  op?: ValueOp;
  limit?: number;
  bit?: string;
  value?: boolean | string | number;
}

export interface ConditionConfig extends ValueTest {
  source: ConditionSource;
  /** alarm: the alarm type (a glob: `over_temperature`, `*_fault`). */
  alarmType?: string;
  /** alarm: least severe alarm that counts (default `low`: any). */
  minSeverity?: Severity;
  /** analytics: which result. */
  kind?: AnalyticsKind;
  /** ml: which model's score. */
  model?: 'fault' | 'anomaly';
  /** The condition must hold this long (gateway time, on fresh good inputs) before the rule acts. */
  forMs?: number;
  /** Further value tests that must hold at the same time (on any asset their globs match). */
  while?: ValueTest[];
}

export const RULE_ACTIONS = ['curtail', 'restore', 'isolate_string', 'shutdown', 'trip'] as const;
export type RuleAction = (typeof RULE_ACTIONS)[number];

export interface RuleParams {
  /** curtail: output limit, % of WMax. */
  percent?: number;
  /** curtail: the inverter's own revert timer (SunSpec model 123 WMaxLimPct_RvrtTms); 0: none. */
  revertSeconds?: number;
  /** trip: the relay point of the target I/O asset (`relay.breakerTrip`). */
  point?: string;
  /** trip: the value written (default true: energized). */
  value?: boolean;
}

export interface RuleConfig {
  id: string;
  description?: string;
  condition: ConditionConfig;
  action: RuleAction;
  params?: RuleParams;
  /** Asset globs the action goes to; default the asset the condition matched. */
  targets?: string[];
  /** curtail only: the inverse action (restore) once the condition has been false this long. */
  release?: { holdOffMs: number };
  /** Exempt from the capacity cap and the rate limit (never from manual mode or stale inputs). */
  emergency?: boolean;
}

export interface AssetPoint {
  assetId: string;
  point: string;
}

/** The notification channels a site may configure (each at most once; also their names in the queue). */
export const NOTIFY_CHANNELS = ['email', 'sms', 'webhook'] as const;
export type NotifyChannel = (typeof NOTIFY_CHANNELS)[number];

/** E-mail notifications (docs/local-control.md "Notifications"). */
export interface EmailOutputConfig {
  host: string;
  port: number;
  /** Implicit TLS from the first byte (SMTPS, usually port 465). */
  secure?: boolean;
  /** Require STARTTLS (default: true unless `secure`); false only for a relay on the gateway itself, without credentials. */
  starttls?: boolean;
  /** PEM of a site's own CA or a relay's self-signed certificate. */
  ca?: string;
  user?: string;
  /** Id (ARN or name) of the secret manager's secret holding the password (production). */
  passwordSecret?: string;
  /** The password inline: local runtime and tests only (it sits in the deployment's configuration). */
  password?: string;
  from: string;
  to: string[];
  minSeverity?: Severity;
  transitions?: TransitionRoute;
  batchIntervalMs?: number;
}

/** SMS through a GSM/LTE modem on a serial port. */
export interface SmsOutputConfig {
  device: string;
  baudRate?: number;
  /** Phone numbers, international format. */
  to: string[];
  minSeverity?: Severity;
  transitions?: TransitionRoute;
  maxParts?: number;
}

/** An HTTPS webhook (an SMS provider's API). */
export interface WebhookOutputConfig {
  url: string;
  /** Id (ARN or name) of the secret holding the bearer token (production). */
  bearerTokenSecret?: string;
  /** The token inline: local runtime and tests only. */
  bearerToken?: string;
  ca?: string;
  minSeverity?: Severity;
  transitions?: TransitionRoute;
}

export interface OutputsConfig {
  relays: { critical?: AssetPoint; high?: AssetPoint };
  ackInput?: AssetPoint;
  email?: EmailOutputConfig;
  sms?: SmsOutputConfig;
  webhook?: WebhookOutputConfig;
  /** A critical alarm nobody acknowledged within afterMs is notified again on these channels. */
  escalation?: { afterMs: number; channels: NotifyChannel[] };
  /** What subjects and texts call the site (default siteId). */
  siteName?: string;
  /** The notification queue's SQLite file, relative to the work folder; created only when a channel is configured. */
  queuePath: string;
  /** Longest wait between two attempts of a channel that is down. */
  retryMaxMs: number;
}

export interface LocalControlConfig extends BaseConfig {
  /** LocalControl's SQLite file (audit log, manual assets, holds, its alarm journal); relative to the work folder. */
  dbPath: string;
  /** Audit rows older than this are deleted. */
  auditRetentionMs: number;
  rules: RuleConfig[];
  /** A processed telemetry, analytics or ML input older than this (gateway time) is not acted on. */
  maxInputAgeMs: number;
  /** An alarm is not acted on when its source has published nothing (transition or snapshot) for this long. */
  maxAlarmSourceSilenceMs: number;
  /** Assets automation leaves alone, besides those an operator set to manual. */
  manualAssets: string[];
  /** Automated actions per asset within the window (refreshes and retries not counted). */
  rateLimit: { maxActions: number; windowMs: number };
  /** Share of the site's rated capacity automation may have curtailed or shut down at once. */
  maxCurtailedShare: number;
  /** Rated AC power per inverter, W; the rest is learned from `ratingPoints`. */
  capacityW: Record<string, number>;
  /** Telemetry points carrying an inverter's rating, W (SunSpec model 120 WRtg). */
  ratingPoints: string[];
  /** A command's `expiresAt` is this far after it is sent. */
  commandTtlMs: number;
  /** No ControlResult this long after sending: the attempt failed. */
  resultTimeoutMs: number;
  /** Further attempts after a failed one (each a new commandId). */
  maxRetries: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** After the last attempt failed, the same action is tried again no sooner than this (or when the device comes back online). */
  failedRetryAfterMs: number;
  /** How often time-based conditions, hold-offs, refreshes and stale inputs are evaluated. */
  tickMs: number;
  /** Relays are first written this long after start, once the alarm sync has answered. */
  startupSettleMs: number;
  outputs: OutputsConfig;
  alarmJournalRetentionMs: number;
  alarmSnapshotIntervalMs: number;
}

const ID = '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$';
const GLOBS = { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 128 } } as const;
const POINT = { type: 'string', minLength: 1, maxLength: 128 } as const;
const ASSET_POINT = {
  type: 'object',
  additionalProperties: false,
  required: ['assetId', 'point'],
  properties: { assetId: { type: 'string', pattern: ID }, point: POINT },
} as const;

/** A plain address (no display name), as the e-mail channel accepts it. */
const EMAIL_ADDRESS = { type: 'string', maxLength: 254, pattern: '^[^\\s@<>()",;:]+@[^\\s@<>()",;:]+$' } as const;
/** A Secrets Manager secret ARN or name. */
const SECRET_ID = { type: 'string', pattern: '^[A-Za-z0-9/_+=.@:-]{1,2048}$' } as const;
const INLINE_SECRET = { type: 'string', minLength: 1, maxLength: 4096 } as const;
const PEM = { type: 'string', maxLength: 65536, pattern: '-----BEGIN CERTIFICATE-----' } as const;
const ROUTE_PROPERTIES = {
  minSeverity: { type: 'string', enum: [...SEVERITIES] },
  transitions: { type: 'string', enum: [...TRANSITION_ROUTES] },
} as const;

const EMAIL_OUTPUT = {
  type: 'object',
  additionalProperties: false,
  required: ['host', 'port', 'from', 'to'],
  properties: {
    host: { type: 'string', minLength: 1, maxLength: 253 },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    secure: { type: 'boolean' },
    starttls: { type: 'boolean' },
    ca: PEM,
    user: { type: 'string', minLength: 1, maxLength: 256 },
    passwordSecret: SECRET_ID,
    password: INLINE_SECRET,
    from: EMAIL_ADDRESS,
    to: { type: 'array', minItems: 1, maxItems: 50, items: EMAIL_ADDRESS },
    ...ROUTE_PROPERTIES,
    batchIntervalMs: { type: 'integer', minimum: 0, maximum: 86400000 },
  },
} as const;

const SMS_OUTPUT = {
  type: 'object',
  additionalProperties: false,
  required: ['device', 'to'],
  properties: {
    device: { type: 'string', minLength: 1, maxLength: 4096 },
    baudRate: { type: 'integer', minimum: 300, maximum: 4000000 },
    to: { type: 'array', minItems: 1, maxItems: 20, items: { type: 'string', pattern: '^\\+?[0-9]{3,20}$' } },
    ...ROUTE_PROPERTIES,
    maxParts: { type: 'integer', minimum: 1, maximum: 4 },
  },
} as const;

const WEBHOOK_OUTPUT = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', maxLength: 2048, pattern: '^https://' },
    bearerTokenSecret: SECRET_ID,
    bearerToken: INLINE_SECRET,
    ca: PEM,
    ...ROUTE_PROPERTIES,
  },
} as const;

const VALUE_TEST_PROPERTIES = {
  assets: GLOBS,
  points: GLOBS,
  op: { type: 'string', enum: [...VALUE_OPS] },
  limit: { type: 'number' },
  bit: { type: 'string', minLength: 1, maxLength: 64 },
  // Greengrass may hand scalars back as strings, and ajv coerces through the branches in order:
  // "true"/"false" become booleans and "12" a number (docs/local-control.md "Rules").
  value: { anyOf: [{ type: 'boolean' }, { type: 'number' }, { type: 'string', maxLength: 256 }] },
} as const;

const RULE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'condition', 'action'],
  properties: {
    id: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    description: { type: 'string', maxLength: 256 },
    condition: {
      type: 'object',
      additionalProperties: false,
      required: ['source'],
      properties: {
        source: { type: 'string', enum: [...CONDITION_SOURCES] },
        ...VALUE_TEST_PROPERTIES,
        alarmType: { type: 'string', pattern: '^[a-z0-9_*?-]{1,64}$' },
        minSeverity: { type: 'string', enum: [...SEVERITIES] },
        kind: { type: 'string', enum: [...ANALYTICS_KINDS] },
        model: { type: 'string', enum: ['fault', 'anomaly'] },
        forMs: { type: 'integer', minimum: 0, maximum: 86400000 },
        while: {
          type: 'array',
          maxItems: 8,
          items: { type: 'object', additionalProperties: false, required: ['assets', 'points', 'op'], properties: VALUE_TEST_PROPERTIES },
        },
      },
    },
    action: { type: 'string', enum: [...RULE_ACTIONS] },
    params: {
      type: 'object',
      additionalProperties: false,
      properties: {
        percent: { type: 'number' },
        revertSeconds: { type: 'integer' },
        point: POINT,
        value: { type: 'boolean' },
      },
    },
    targets: GLOBS,
    release: { type: 'object', additionalProperties: false, required: ['holdOffMs'], properties: { holdOffMs: { type: 'integer', minimum: 0, maximum: 86400000 } } },
    emergency: { type: 'boolean' },
  },
} as const;

export const LOCAL_CONTROL_CONFIG_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'siteId', 'metricsIntervalMs', 'logLevel', 'dbPath', 'auditRetentionMs', 'rules', 'maxInputAgeMs', 'maxAlarmSourceSilenceMs', 'manualAssets',
    'rateLimit', 'maxCurtailedShare', 'capacityW', 'ratingPoints', 'commandTtlMs', 'resultTimeoutMs', 'maxRetries', 'retryInitialMs', 'retryMaxMs',
    'failedRetryAfterMs', 'tickMs', 'startupSettleMs', 'outputs', 'alarmJournalRetentionMs', 'alarmSnapshotIntervalMs',
  ],
  properties: {
    ...BASE_CONFIG_PROPERTIES,
    dbPath: { type: 'string', minLength: 1, maxLength: 1024 },
    auditRetentionMs: { type: 'integer', minimum: 86400000, maximum: 3153600000000 },
    rules: { type: 'array', maxItems: 128, items: RULE_SCHEMA },
    maxInputAgeMs: { type: 'integer', minimum: 1000, maximum: 600000 },
    maxAlarmSourceSilenceMs: { type: 'integer', minimum: 10000, maximum: 3600000 },
    manualAssets: { type: 'array', maxItems: 10000, uniqueItems: true, items: { type: 'string', pattern: ID } },
    rateLimit: {
      type: 'object',
      additionalProperties: false,
      required: ['maxActions', 'windowMs'],
      properties: { maxActions: { type: 'integer', minimum: 1, maximum: 1000 }, windowMs: { type: 'integer', minimum: 1000, maximum: 86400000 } },
    },
    maxCurtailedShare: { type: 'number', minimum: 0, maximum: 1 },
    capacityW: { type: 'object', maxProperties: 10000, propertyNames: { pattern: ID }, additionalProperties: { type: 'number', exclusiveMinimum: 0 } },
    ratingPoints: { type: 'array', maxItems: 16, items: POINT },
    commandTtlMs: { type: 'integer', minimum: 500, maximum: 60000 },
    resultTimeoutMs: { type: 'integer', minimum: 1000, maximum: 120000 },
    maxRetries: { type: 'integer', minimum: 0, maximum: 10 },
    retryInitialMs: { type: 'integer', minimum: 100, maximum: 600000 },
    retryMaxMs: { type: 'integer', minimum: 100, maximum: 3600000 },
    failedRetryAfterMs: { type: 'integer', minimum: 10000, maximum: 86400000 },
    tickMs: { type: 'integer', minimum: 100, maximum: 10000 },
    startupSettleMs: { type: 'integer', minimum: 0, maximum: 60000 },
    outputs: {
      type: 'object',
      additionalProperties: false,
      required: ['relays', 'queuePath', 'retryMaxMs'],
      properties: {
        relays: { type: 'object', additionalProperties: false, properties: { critical: ASSET_POINT, high: ASSET_POINT } },
        ackInput: ASSET_POINT,
        email: EMAIL_OUTPUT,
        sms: SMS_OUTPUT,
        webhook: WEBHOOK_OUTPUT,
        escalation: {
          type: 'object',
          additionalProperties: false,
          required: ['afterMs', 'channels'],
          properties: {
            afterMs: { type: 'integer', minimum: 1000, maximum: 604800000 },
            channels: { type: 'array', minItems: 1, maxItems: 3, uniqueItems: true, items: { type: 'string', enum: [...NOTIFY_CHANNELS] } },
          },
        },
        siteName: { type: 'string', minLength: 1, maxLength: 64 },
        queuePath: { type: 'string', minLength: 1, maxLength: 1024 },
        retryMaxMs: { type: 'integer', minimum: 1000, maximum: 3600000 },
      },
    },
    alarmJournalRetentionMs: { type: 'integer', minimum: 3600000, maximum: 31536000000 },
    alarmSnapshotIntervalMs: { type: 'integer', minimum: 1000, maximum: 3600000 },
  },
};

/**
 * The specification's automated responses (dCMMS edge specification §4.2 control actions and §3.2
 * local control, docs/specification.md) as rules for the site simulator's naming (docs/simulator.md):
 * inverters `INV-*`, combiner boxes `CB-*`, weather stations `WS-*`, the I/O module `IO-01`.
 */
export const DEFAULT_RULES: RuleConfig[] = [
  {
    id: 'curtail-over-temperature',
    description: 'Curtail an inverter to 50 % while the Processor reports it over temperature; restore 5 min after the alarm cleared.',
    condition: { source: 'alarm', alarmType: 'over_temperature', minSeverity: 'high', assets: ['INV-*'] },
    action: 'curtail',
    params: { percent: 50, revertSeconds: 300 },
    release: { holdOffMs: 300000 },
  },
  {
    id: 'isolate-string-insulation-fault',
    description: 'Open the disconnect of a string whose combiner box reports an insulation fault.',
    condition: { source: 'value', assets: ['CB-*'], points: ['string*.status'], op: 'hasBit', bit: 'insulationFault' },
    action: 'isolate_string',
  },
  {
    id: 'isolate-string-low-current',
    description: 'Open the disconnect of a string that carried less than half the current of its box for 5 min while the sun is up.',
    condition: {
      source: 'value',
      assets: ['CB-*'],
      points: ['string*.status'],
      op: 'hasBit',
      bit: 'lowCurrent',
      forMs: 300000,
      while: [{ assets: ['WS-*'], points: ['poa'], op: 'above', limit: 300 }],
    },
    action: 'isolate_string',
  },
  {
    id: 'emergency-shutdown-fire',
    description: 'Shut every inverter down when the fire alarm input is on.',
    condition: { source: 'value', assets: ['IO-01'], points: ['di.fireAlarm'], op: 'equals', value: true },
    action: 'shutdown',
    targets: ['INV-*'],
    emergency: true,
  },
  {
    id: 'breaker-trip-fire',
    description: 'Trip the main breaker when the fire alarm input is on.',
    condition: { source: 'value', assets: ['IO-01'], points: ['di.fireAlarm'], op: 'equals', value: true },
    action: 'trip',
    params: { point: 'relay.breakerTrip' },
    emergency: true,
  },
  {
    id: 'shutdown-ground-fault',
    description: 'Shut an inverter down on a critical ground fault alarm (an emergency shutdown: a safety action, not a production cut).',
    condition: { source: 'alarm', alarmType: 'ground_fault', minSeverity: 'critical', assets: ['INV-*'] },
    action: 'shutdown',
    emergency: true,
  },
];

export const LOCAL_CONTROL_DEFAULTS: LocalControlConfig = {
  ...BASE_DEFAULTS,
  dbPath: 'local-control.db',
  auditRetentionMs: 90 * 86400000,
  rules: DEFAULT_RULES,
  maxInputAgeMs: 10000,
  maxAlarmSourceSilenceMs: 180000,
  manualAssets: [],
  rateLimit: { maxActions: 6, windowMs: 600000 },
  maxCurtailedShare: 0.5,
  capacityW: {},
  ratingPoints: ['120.WRtg'],
  commandTtlMs: 5000,
  resultTimeoutMs: 10000,
  maxRetries: 2,
  retryInitialMs: 1000,
  retryMaxMs: 30000,
  failedRetryAfterMs: 300000,
  tickMs: 1000,
  startupSettleMs: 2000,
  outputs: {
    relays: { critical: { assetId: 'IO-01', point: 'relay.alarmHorn' }, high: { assetId: 'IO-01', point: 'relay.beacon' } },
    queuePath: 'notifications.db',
    retryMaxMs: 60000,
  },
  alarmJournalRetentionMs: 7 * 86400000,
  alarmSnapshotIntervalMs: 60000,
};

/** Cross-field checks the schema cannot express; throws ConfigError naming the key. */
export function checkLocalControlConfig(c: Readonly<LocalControlConfig>): void {
  compileRules(c.rules);
  if (c.retryMaxMs < c.retryInitialMs) throw new ConfigError('retryMaxMs', `configuration key 'retryMaxMs' must be at least retryInitialMs (${c.retryInitialMs})`);
  if (c.resultTimeoutMs <= c.commandTtlMs) {
    // The adapter answers `expired` once the deadline passed; waiting less than that would give
    // up on a command that may still run.
    throw new ConfigError('resultTimeoutMs', `configuration key 'resultTimeoutMs' must be longer than commandTtlMs (${c.commandTtlMs})`);
  }
  checkNotifyConfig(c);
}

export const localControlConfigSpec: ConfigSpec<LocalControlConfig> = {
  schema: LOCAL_CONTROL_CONFIG_SCHEMA,
  defaults: LOCAL_CONTROL_DEFAULTS,
  check: checkLocalControlConfig,
};
