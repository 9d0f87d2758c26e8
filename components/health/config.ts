/**
 * com.dcmms.edge.Health configuration: the schema and the defaults object. The recipe's
 * DefaultConfiguration (recipes/com.dcmms.edge.Health.yaml) must equal HEALTH_DEFAULTS; a test
 * checks it, and that it validates against HEALTH_CONFIG_SCHEMA.
 */
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, type BaseConfig, type ConfigSpec, type JsonSchema } from '../lib/config';

export interface HealthConfig extends BaseConfig {
  /** Site summary period; 5 minutes per dCMMS edge specification §8.1 (docs/specification.md: reported to the cloud every 5 minutes). */
  reportIntervalMs: number;
  /** First summary this long after start, so a fresh deployment is visible without waiting a period. */
  initialReportDelayMs: number;
  /** A component is stale after this many of its own reporting intervals without a report. */
  staleAfterIntervals: number;
  /** Short names (`processor`, `uplink`) that must report; one that never does is `missing`. */
  expectedComponents: string[];
  /** Filesystem whose usage is reported (the one holding the Greengrass root and the stores). */
  diskPath: string;
}

export const HEALTH_CONFIG_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['siteId', 'metricsIntervalMs', 'logLevel', 'reportIntervalMs', 'initialReportDelayMs', 'staleAfterIntervals', 'expectedComponents', 'diskPath'],
  properties: {
    ...BASE_CONFIG_PROPERTIES,
    reportIntervalMs: { type: 'integer', minimum: 10000, maximum: 86400000 },
    initialReportDelayMs: { type: 'integer', minimum: 0, maximum: 3600000 },
    staleAfterIntervals: { type: 'integer', minimum: 2, maximum: 100 },
    expectedComponents: {
      type: 'array',
      maxItems: 64,
      uniqueItems: true,
      items: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' },
    },
    diskPath: { type: 'string', minLength: 1, pattern: '^/' },
  },
};

export const HEALTH_DEFAULTS: HealthConfig = {
  ...BASE_DEFAULTS,
  reportIntervalMs: 300000,
  initialReportDelayMs: 15000,
  staleAfterIntervals: 3,
  expectedComponents: [],
  diskPath: '/',
};

export const healthConfigSpec: ConfigSpec<HealthConfig> = { schema: HEALTH_CONFIG_SCHEMA, defaults: HEALTH_DEFAULTS };
