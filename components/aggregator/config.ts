/**
 * com.dcmms.edge.Aggregator configuration: one schema, one defaults object (CONVENTIONS.md
 * "Configuration"). The recipe's DefaultConfiguration equals AGGREGATOR_DEFAULTS (a test checks).
 *
 * Levels and retention follow edge-computing-spec.md §5.1 (level_2_1min "30 days (edge)",
 * level_3_15min, level_4_daily) and the schedule §5.2 (every minute; the day at 00:05).
 */
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, type BaseConfig, type ConfigSpec, type JsonSchema } from '../lib/config';
import { ConfigError } from '../lib/errors';

export interface AggregatorConfig extends BaseConfig {
  /**
   * The Processor's store (read-only). Empty: the `DCMMS_PROCESSOR_STORE` environment variable,
   * which the recipe sets from `{com.dcmms.edge.Processor:work:path}/raw.db`.
   */
  storePath: string;
  /** The Aggregator's own SQLite file (rollups, progress, outbox); relative to its work folder. */
  dbPath: string;
  /** IANA time zone of the site: daily buckets are local days (23 or 25 h on DST change days). */
  timeZone: string;
  /** A minute closes this long after its end: covers the Processor's interpolation (10 s) and commit window. */
  closeDelayMs: number;
  /** A day closes at local midnight plus this (spec §5.2: 00:05). */
  dayCloseDelayMs: number;
  /** Late samples are looked for this far back (the Processor's maxPastMs, 24 h). */
  lateWindowMs: number;
  /** How often the store's chunk statistics are audited for late data the subscription missed. */
  auditIntervalMs: number;
  /** A processed-telemetry message older than the closed watermark re-aggregates its minute this long after it arrived (store commit). */
  lateSettleMs: number;
  /** First start with an empty database: roll up this much history already in the store. */
  initialBackfillMs: number;
  /** Retention of rollups on the gateway (spec §5.1: 1-minute rows 30 days at the edge). */
  retention1mMs: number;
  retention15mMs: number;
  retention1dMs: number;
  /** Series read per event-loop turn while closing (bounds how long the loop is held). */
  seriesPerSlice: number;
  /** Points whose daily summary is integrated power (W) and energy counter (Wh). */
  powerPoints: string[];
  energyCounterPoints: string[];
}

const DAY = 86_400_000;

export const AGGREGATOR_CONFIG_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'siteId', 'metricsIntervalMs', 'logLevel', 'storePath', 'dbPath', 'timeZone', 'closeDelayMs', 'dayCloseDelayMs', 'lateWindowMs',
    'auditIntervalMs', 'lateSettleMs', 'initialBackfillMs', 'retention1mMs', 'retention15mMs', 'retention1dMs', 'seriesPerSlice', 'powerPoints', 'energyCounterPoints',
  ],
  properties: {
    ...BASE_CONFIG_PROPERTIES,
    storePath: { type: 'string', maxLength: 1024 },
    dbPath: { type: 'string', minLength: 1, maxLength: 1024 },
    timeZone: { type: 'string', minLength: 1, maxLength: 64 },
    closeDelayMs: { type: 'integer', minimum: 0, maximum: 300000 },
    dayCloseDelayMs: { type: 'integer', minimum: 0, maximum: 6 * 3600000 },
    lateWindowMs: { type: 'integer', minimum: 0, maximum: 7 * DAY },
    auditIntervalMs: { type: 'integer', minimum: 60000, maximum: DAY },
    lateSettleMs: { type: 'integer', minimum: 0, maximum: 60000 },
    initialBackfillMs: { type: 'integer', minimum: 0, maximum: 7 * DAY },
    retention1mMs: { type: 'integer', minimum: 3600000, maximum: 400 * DAY },
    retention15mMs: { type: 'integer', minimum: 3600000, maximum: 3660 * DAY },
    retention1dMs: { type: 'integer', minimum: DAY, maximum: 36600 * DAY },
    seriesPerSlice: { type: 'integer', minimum: 1, maximum: 100000 },
    powerPoints: { type: 'array', maxItems: 32, items: { type: 'string', minLength: 1, maxLength: 128 } },
    energyCounterPoints: { type: 'array', maxItems: 32, items: { type: 'string', minLength: 1, maxLength: 128 } },
  },
};

export const AGGREGATOR_DEFAULTS: AggregatorConfig = {
  ...BASE_DEFAULTS,
  storePath: '',
  dbPath: 'aggregates.db',
  timeZone: 'UTC',
  closeDelayMs: 15000,
  dayCloseDelayMs: 300000,
  lateWindowMs: DAY,
  auditIntervalMs: 900000,
  lateSettleMs: 1000,
  initialBackfillMs: 3600000,
  retention1mMs: 30 * DAY,
  retention15mMs: 400 * DAY,
  retention1dMs: 3650 * DAY,
  seriesPerSlice: 500,
  powerPoints: ['W'],
  energyCounterPoints: ['WH'],
};

/** Checks beyond the schema: the time zone must be one Intl knows (a ConfigError names the key). */
export function checkAggregatorConfig(c: Readonly<AggregatorConfig>): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: c.timeZone });
  } catch {
    throw new ConfigError('timeZone', `timeZone ${JSON.stringify(c.timeZone)} is not an IANA time zone this Node.js knows`);
  }
}

export const aggregatorConfigSpec: ConfigSpec<AggregatorConfig> = { schema: AGGREGATOR_CONFIG_SCHEMA, defaults: AGGREGATOR_DEFAULTS, check: checkAggregatorConfig };
