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

export const EXPORTER_NAMES = ['iotcore', 's3'] as const;
export type ExporterName = (typeof EXPORTER_NAMES)[number];

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

const EXPORTER_LIST = { type: 'array', uniqueItems: true, maxItems: 2, items: { type: 'string', enum: [...EXPORTER_NAMES] } };

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
    routes: {
      ...classMap(EXPORTER_LIST),
      properties: { ...Object.fromEntries(CLASSES.map((c) => [c, EXPORTER_LIST])), health: { ...EXPORTER_LIST, items: { type: 'string', enum: ['s3'] } } },
    },
    exporters: {
      type: 'object',
      additionalProperties: false,
      required: ['iotcore', 's3'],
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
  },
  backoffInitialMs: 1000,
  backoffMaxMs: 300000,
  statusIntervalMs: 30000,
};

/** Rules across keys (ConfigError names the key). */
export function checkUplinkConfig(c: Readonly<UplinkConfig>): void {
  if (c.exporters.s3.enabled && !c.exporters.s3.bucket) throw new ConfigError('exporters.s3.bucket', 'exporters.s3.bucket is required when the S3 exporter is enabled');
  if (c.backoffMaxMs < c.backoffInitialMs) throw new ConfigError('backoffMaxMs', `backoffMaxMs (${c.backoffMaxMs}) must be at least backoffInitialMs (${c.backoffInitialMs})`);
}

export const uplinkConfigSpec: ConfigSpec<UplinkConfig> = { schema: UPLINK_CONFIG_SCHEMA, defaults: UPLINK_DEFAULTS, check: checkUplinkConfig };
