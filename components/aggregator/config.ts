/**
 * com.dcmms.edge.Aggregator configuration: one schema, one defaults object (docs/conventions.md
 * "Configuration"). The recipe's DefaultConfiguration equals AGGREGATOR_DEFAULTS (a test checks).
 *
 * Levels and retention follow the dCMMS edge specification §5.1 (level_2_1min 30 days at the
 * edge, level_3_15min, level_4_daily) and the schedule §5.2 (every minute; the day at 00:05);
 * docs/specification.md.
 */
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, type BaseConfig, type ConfigSpec, type JsonSchema } from '../lib/config';
import { ConfigError } from '../lib/errors';
import { STORE_DEFAULTS } from '../lib/store';

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
  /**
   * A minute closes this long after its end: covers the Processor's interpolation (10 s) and commit
   * window, and must be at least the store's `lateAfterMs` (10 s): a sample committed sooner than
   * that after its time is not in the late log, so the close has to see it (docs/aggregator.md).
   */
  closeDelayMs: number;
  /** A day closes at local midnight plus this (spec §5.2: 00:05). */
  dayCloseDelayMs: number;
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
    'siteId', 'metricsIntervalMs', 'logLevel', 'storePath', 'dbPath', 'timeZone', 'closeDelayMs', 'dayCloseDelayMs',
    'initialBackfillMs', 'retention1mMs', 'retention15mMs', 'retention1dMs', 'seriesPerSlice', 'powerPoints', 'energyCounterPoints',
  ],
  properties: {
    ...BASE_CONFIG_PROPERTIES,
    storePath: { type: 'string', maxLength: 1024 },
    dbPath: { type: 'string', minLength: 1, maxLength: 1024 },
    timeZone: { type: 'string', minLength: 1, maxLength: 64 },
    closeDelayMs: { type: 'integer', minimum: 0, maximum: 300000 },
    dayCloseDelayMs: { type: 'integer', minimum: 0, maximum: 6 * 3600000 },
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
  initialBackfillMs: 3600000,
  retention1mMs: 30 * DAY,
  retention15mMs: 400 * DAY,
  retention1dMs: 3650 * DAY,
  seriesPerSlice: 500,
  powerPoints: ['W'],
  energyCounterPoints: ['WH'],
};

/**
 * Checks beyond the schema (a ConfigError names the key): the time zone must be one Intl knows,
 * and minutes must not close before the store logs late samples. The rule that makes the late log
 * complete: a sample committed more than `lateAfterMs` after its time is logged; one committed
 * sooner is visible to a close that reads the store `closeDelayMs` >= `lateAfterMs` after the
 * minute's end. The Processor opens its store with the default `lateAfterMs`, checked here; a store
 * written with another value is checked when it is opened (the Aggregator then closes minutes
 * after the store's `lateAfterMs` and warns).
 */
export function checkAggregatorConfig(c: Readonly<AggregatorConfig>): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: c.timeZone });
  } catch {
    throw new ConfigError('timeZone', `timeZone ${JSON.stringify(c.timeZone)} is not an IANA time zone this Node.js knows`);
  }
  if (c.closeDelayMs < STORE_DEFAULTS.lateAfterMs) {
    throw new ConfigError('closeDelayMs', `closeDelayMs ${c.closeDelayMs} is shorter than the store's lateAfterMs (${STORE_DEFAULTS.lateAfterMs} ms): samples committed in between would be neither read by the close nor in the late log; allowed: ${STORE_DEFAULTS.lateAfterMs}..300000`);
  }
}

export const aggregatorConfigSpec: ConfigSpec<AggregatorConfig> = { schema: AGGREGATOR_CONFIG_SCHEMA, defaults: AGGREGATOR_DEFAULTS, check: checkAggregatorConfig };
