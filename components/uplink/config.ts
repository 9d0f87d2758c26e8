/**
 * com.dcmms.edge.Uplink configuration: one schema, one defaults object (docs/conventions.md
 * "Configuration"); the recipe's DefaultConfiguration equals UPLINK_DEFAULTS (a test checks).
 *
 * Bounds follow dCMMS edge specification §3.1 and §7 (docs/specification.md: a 10 GB, 24 h local
 * buffer, gzip, exponential backoff) and AWS IoT Core's message broker quotas
 * (docs.aws.amazon.com/general/latest/gr/iot-core.html: 100 publish requests per second per
 * connection, 128 KB per message, 512 KB/s per connection).
 */
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, ConfigError, type BaseConfig, type ConfigSpec, type JsonSchema } from '../lib/config';
import { CLASSES, type RecordClass } from './classes';

/**
 * Exporters, in a fixed order: the index is what the outbox stores per delivery, so names are only
 * ever appended. The three `streammanager-*` exporters go through Greengrass Stream Manager
 * (exporters/stream-manager.ts, docs/uplink.md "Stream Manager").
 */
export const EXPORTER_NAMES = ['iotcore', 's3', 'streammanager-s3', 'streammanager-sitewise', 'streammanager-kinesis'] as const;
export type ExporterName = (typeof EXPORTER_NAMES)[number];
export type StreamManagerDestination = 's3' | 'sitewise' | 'kinesis';

/** The Stream Manager destination of an exporter name, if it is one. */
export function smDestination(name: ExporterName): StreamManagerDestination | undefined {
  return name.startsWith('streammanager-') ? (name.slice('streammanager-'.length) as StreamManagerDestination) : undefined;
}

/** Classes each exporter may carry: SiteWise takes rollups (property values), IoT Core has no topic for health. */
export const EXPORTER_CLASSES: Record<ExporterName, readonly RecordClass[]> = {
  iotcore: ['alarms', 'events', '1m', '15m', '1d'],
  s3: CLASSES,
  'streammanager-s3': CLASSES,
  'streammanager-sitewise': ['1m', '15m'],
  'streammanager-kinesis': CLASSES,
};

export interface StreamManagerConfig {
  /** Master switch: off, no connection to Stream Manager is made whatever the destinations say. */
  enabled: boolean;
  /** 0: STREAM_MANAGER_SERVER_PORT, else IPC GetConfiguration of aws.greengrass.StreamManager `port`, else 8088. */
  port: number;
  /** Stream names start with it (`<prefix><class>-s3`, `<prefix>s3-status`, ...). */
  streamPrefix: string;
  /** One request to Stream Manager (connect, append, describe) may take this long. */
  requestTimeoutMs: number;
  /** How long `send` waits for an S3 task's final status before the exporter counts as offline (the task stays queued). */
  taskTimeoutMs: number;
  concurrency: number;
  /** While a Stream Manager exporter is offline, how often it checks whether it may send again. */
  probeIntervalMs: number;
  s3: { enabled: boolean; bucket: string; prefix: string };
  sitewise: { enabled: boolean };
  kinesis: { enabled: boolean; streamName: string };
}

export interface UplinkConfig extends BaseConfig {
  /** SQLite outbox file; relative paths are under the work folder. */
  outboxPath: string;
  /** Byte bound of the outbox (records + sealed batches), specification §3.1: 10 GB. */
  maxOutboxBytes: number;
  /** Age bound: a record not delivered within this is dropped (counted `expired_<class>`). Also how long retries go on. */
  maxAgeMs: number;
  /** `FULL` makes every append survive power loss; `NORMAL` (WAL) survives a process crash. */
  outboxSynchronous: 'FULL' | 'NORMAL';
  /** Longest a record waits in its class before it is sealed into a batch (alarms: 0 = at once). */
  batchDelayMs: Record<RecordClass, number>;
  maxBatchRecords: number;
  /** Sealed batch (gzip) size limit; IoT Core's message limit is 128 KB. */
  maxBatchBytes: number;
  gzipLevel: number;
  /** Which exporters each class goes to. `health` cannot go to IoT Core (Health publishes there itself). */
  routes: Record<RecordClass, ExporterName[]>;
  exporters: {
    iotcore: { enabled: boolean; publishesPerSecond: number; bytesPerSecond: number; concurrency: number; probeIntervalMs: number };
    s3: {
      enabled: boolean;
      bucket: string;
      prefix: string;
      /** Empty: the SDK's default (AWS). Tests and S3-compatible stores set it. */
      endpoint: string;
      region: string;
      forcePathStyle: boolean;
      concurrency: number;
      requestTimeoutMs: number;
      /** While S3 is offline, how often the probe (a tiny PutObject) checks whether it is back. */
      probeIntervalMs: number;
    };
    /** Greengrass Stream Manager: exports to S3 (tasks), IoT SiteWise and Kinesis (exporters/stream-manager.ts). */
    streamManager: StreamManagerConfig;
  };
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** How often the connectivity status is published (and the IoT Core probe made while idle). */
  statusIntervalMs: number;
}

const classMap = (item: Record<string, unknown>): Record<string, unknown> => ({
  type: 'object',
  additionalProperties: false,
  required: [...CLASSES],
  properties: Object.fromEntries(CLASSES.map((c) => [c, item])),
});

const exporterList = (cls: RecordClass): Record<string, unknown> => {
  const names = EXPORTER_NAMES.filter((n) => EXPORTER_CLASSES[n].includes(cls));
  return { type: 'array', uniqueItems: true, maxItems: names.length, items: { type: 'string', enum: names } };
};

/** Stream Manager stream names: 1 to 255 of `[\w ,.-]` (MessageStreamDefinition); the prefix leaves room for the rest. */
export const SM_STREAM_PREFIX_PATTERN = '^[A-Za-z0-9_ ,.-]{0,200}$';
/** Kinesis Data Streams stream names (Kinesis API Reference, CreateStream). */
const KINESIS_STREAM_NAME = '^[a-zA-Z0-9_.-]{1,128}$';

export const UPLINK_CONFIG_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'siteId', 'metricsIntervalMs', 'logLevel', 'outboxPath', 'maxOutboxBytes', 'maxAgeMs', 'outboxSynchronous', 'batchDelayMs', 'maxBatchRecords',
    'maxBatchBytes', 'gzipLevel', 'routes', 'exporters', 'backoffInitialMs', 'backoffMaxMs', 'statusIntervalMs',
  ],
  properties: {
    ...BASE_CONFIG_PROPERTIES,
    outboxPath: { type: 'string', minLength: 1, maxLength: 1024 },
    maxOutboxBytes: { type: 'integer', minimum: 65536 },
    maxAgeMs: { type: 'integer', minimum: 60000, maximum: 31536000000 },
    outboxSynchronous: { type: 'string', enum: ['FULL', 'NORMAL'] },
    batchDelayMs: classMap({ type: 'integer', minimum: 0, maximum: 3600000 }),
    maxBatchRecords: { type: 'integer', minimum: 1, maximum: 100000 },
    // 128 KB is IoT Core's message size limit; keep room for the MQTT header.
    maxBatchBytes: { type: 'integer', minimum: 1024, maximum: 126976 },
    gzipLevel: { type: 'integer', minimum: 1, maximum: 9 },
    routes: { ...classMap({}), properties: Object.fromEntries(CLASSES.map((c) => [c, exporterList(c)])) },
    exporters: {
      type: 'object',
      additionalProperties: false,
      required: ['iotcore', 's3', 'streamManager'],
      properties: {
        iotcore: {
          type: 'object',
          additionalProperties: false,
          required: ['enabled', 'publishesPerSecond', 'bytesPerSecond', 'concurrency', 'probeIntervalMs'],
          properties: {
            enabled: { type: 'boolean' },
            // IoT Core: at most 100 publishes/s per connection; the connection is the nucleus's, shared with Health.
            publishesPerSecond: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
            // IoT Core: 512 KB/s per connection.
            bytesPerSecond: { type: 'integer', minimum: 1024, maximum: 524288 },
            concurrency: { type: 'integer', minimum: 2, maximum: 100 },
            probeIntervalMs: { type: 'integer', minimum: 100, maximum: 600000 },
          },
        },
        s3: {
          type: 'object',
          additionalProperties: false,
          required: ['enabled', 'bucket', 'prefix', 'endpoint', 'region', 'forcePathStyle', 'concurrency', 'requestTimeoutMs', 'probeIntervalMs'],
          properties: {
            enabled: { type: 'boolean' },
            bucket: { type: 'string', maxLength: 63 },
            prefix: { type: 'string', maxLength: 256, pattern: '^([A-Za-z0-9!_.*()\'-]+/)*$' },
            endpoint: { type: 'string', maxLength: 1024 },
            region: { type: 'string', maxLength: 32 },
            forcePathStyle: { type: 'boolean' },
            concurrency: { type: 'integer', minimum: 2, maximum: 64 },
            requestTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000 },
            probeIntervalMs: { type: 'integer', minimum: 1000, maximum: 600000 },
          },
        },
        streamManager: {
          type: 'object',
          additionalProperties: false,
          required: ['enabled', 'port', 'streamPrefix', 'requestTimeoutMs', 'taskTimeoutMs', 'concurrency', 'probeIntervalMs', 's3', 'sitewise', 'kinesis'],
          properties: {
            enabled: { type: 'boolean' },
            port: { type: 'integer', minimum: 0, maximum: 65535 },
            streamPrefix: { type: 'string', pattern: SM_STREAM_PREFIX_PATTERN },
            requestTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000 },
            taskTimeoutMs: { type: 'integer', minimum: 1000, maximum: 3600000 },
            concurrency: { type: 'integer', minimum: 2, maximum: 64 },
            probeIntervalMs: { type: 'integer', minimum: 100, maximum: 600000 },
            s3: {
              type: 'object',
              additionalProperties: false,
              required: ['enabled', 'bucket', 'prefix'],
              properties: {
                enabled: { type: 'boolean' },
                bucket: { type: 'string', maxLength: 63 },
                prefix: { type: 'string', maxLength: 256, pattern: '^([A-Za-z0-9!_.*()\'-]+/)*$' },
              },
            },
            sitewise: { type: 'object', additionalProperties: false, required: ['enabled'], properties: { enabled: { type: 'boolean' } } },
            kinesis: {
              type: 'object',
              additionalProperties: false,
              required: ['enabled', 'streamName'],
              properties: { enabled: { type: 'boolean' }, streamName: { type: 'string', maxLength: 128 } },
            },
          },
        },
      },
    },
    backoffInitialMs: { type: 'integer', minimum: 10, maximum: 600000 },
    backoffMaxMs: { type: 'integer', minimum: 100, maximum: 3600000 },
    statusIntervalMs: { type: 'integer', minimum: 100, maximum: 3600000 },
  },
};

export const UPLINK_DEFAULTS: UplinkConfig = {
  ...BASE_DEFAULTS,
  outboxPath: 'outbox.db',
  maxOutboxBytes: 10 * 1024 ** 3,
  maxAgeMs: 24 * 3600000,
  outboxSynchronous: 'FULL',
  batchDelayMs: { alarms: 0, events: 1000, '1m': 10000, '15m': 10000, '1d': 0, health: 10000 },
  maxBatchRecords: 2000,
  maxBatchBytes: 120 * 1024,
  gzipLevel: 6,
  routes: { alarms: ['iotcore', 's3'], events: ['iotcore', 's3'], '1m': ['s3'], '15m': ['iotcore', 's3'], '1d': ['iotcore', 's3'], health: ['s3'] },
  exporters: {
    iotcore: { enabled: true, publishesPerSecond: 50, bytesPerSecond: 262144, concurrency: 8, probeIntervalMs: 1000 },
    s3: { enabled: false, bucket: '', prefix: 'edge/', endpoint: '', region: '', forcePathStyle: false, concurrency: 4, requestTimeoutMs: 30000, probeIntervalMs: 5000 },
    streamManager: {
      enabled: false,
      port: 0,
      streamPrefix: 'dcmms-',
      requestTimeoutMs: 10000,
      taskTimeoutMs: 60000,
      concurrency: 4,
      probeIntervalMs: 5000,
      s3: { enabled: false, bucket: '', prefix: 'edge/' },
      sitewise: { enabled: false },
      kinesis: { enabled: false, streamName: '' },
    },
  },
  backoffInitialMs: 1000,
  backoffMaxMs: 300000,
  statusIntervalMs: 30000,
};

/** Whether an exporter runs under a configuration (a Stream Manager destination needs the master switch too). */
export function exporterEnabled(c: Readonly<UplinkConfig>, name: ExporterName): boolean {
  const d = smDestination(name);
  if (d === undefined) return c.exporters[name as 'iotcore' | 's3'].enabled;
  return c.exporters.streamManager.enabled && c.exporters.streamManager[d].enabled;
}

/** The settings a sender depends on: a change rebuilds it. The Stream Manager exporters share one connection, so all of it. */
export function exporterSettings(c: Readonly<UplinkConfig>, name: ExporterName): unknown {
  return smDestination(name) === undefined ? c.exporters[name as 'iotcore' | 's3'] : c.exporters.streamManager;
}

/** Rules across keys (ConfigError names the key). */
export function checkUplinkConfig(c: Readonly<UplinkConfig>): void {
  if (c.exporters.s3.enabled && !c.exporters.s3.bucket) throw new ConfigError('exporters.s3.bucket', 'exporters.s3.bucket is required when the S3 exporter is enabled');
  const sm = c.exporters.streamManager;
  if (sm.enabled && sm.s3.enabled && !sm.s3.bucket) {
    throw new ConfigError('exporters.streamManager.s3.bucket', 'exporters.streamManager.s3.bucket is required when the Stream Manager S3 export is enabled');
  }
  if (sm.enabled && sm.kinesis.enabled && !new RegExp(KINESIS_STREAM_NAME).test(sm.kinesis.streamName)) {
    throw new ConfigError('exporters.streamManager.kinesis.streamName', `exporters.streamManager.kinesis.streamName must match ${KINESIS_STREAM_NAME} when the Kinesis export is enabled (got ${JSON.stringify(sm.kinesis.streamName)})`);
  }
  for (const cls of CLASSES) {
    // Both would write the same object key twice, through two uploaders with two retry policies.
    if (c.routes[cls].includes('s3') && c.routes[cls].includes('streammanager-s3')) {
      throw new ConfigError(`routes.${cls}`, `routes.${cls} names both s3 and streammanager-s3: one S3 path per class (they write the same keys)`);
    }
  }
  if (c.backoffMaxMs < c.backoffInitialMs) throw new ConfigError('backoffMaxMs', `backoffMaxMs (${c.backoffMaxMs}) must be at least backoffInitialMs (${c.backoffInitialMs})`);
}

export const uplinkConfigSpec: ConfigSpec<UplinkConfig> = { schema: UPLINK_CONFIG_SCHEMA, defaults: UPLINK_DEFAULTS, check: checkUplinkConfig };
