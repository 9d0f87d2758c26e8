/**
 * com.dcmms.edge.LocalHmi configuration: one schema, one defaults object; the recipe's
 * DefaultConfiguration equals LOCAL_HMI_DEFAULTS (a test checks). What each key means and why the
 * defaults are what they are: docs/local-hmi.md "Configuration".
 */
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, type BaseConfig, type ConfigSpec, type JsonSchema } from '../lib/config';
import { ConfigError } from '../lib/errors';
import { parsePasswordHash } from './passwords';

export interface HmiPoints {
  /** Inverter AC power (W): an asset with this point is shown as an inverter. */
  inverterPower: string;
  inverterDcPower: string;
  /** Operating state (SunSpec 103 `St`). */
  inverterState: string;
  /** Lifetime energy counter (Wh): energy today is its increase since local midnight. */
  inverterEnergy: string;
  /** Meter AC power (W, > 0 export): an asset with this point is shown as the meter. */
  meterPower: string;
  /** Meter export energy counter (Wh). */
  meterEnergy: string;
  /** Weather station points: an asset with `irradiance` is shown as the weather station. */
  irradiance: string;
  ambient: string;
  module: string;
}

export interface LoginRateLimit {
  /** Failed logins allowed per client address, and per user name, within `windowMs`. */
  maxPerAddress: number;
  maxPerUser: number;
  windowMs: number;
}

export interface LocalHmiConfig extends BaseConfig {
  port: number;
  bindAddress: string;
  /** Certificate and key (PEM). Both empty: generated at first start and kept in the work folder. */
  tls: { certPath: string; keyPath: string };
  /** Extra host names for the generated certificate's subjectAltName (besides the gateway's addresses and localhost). */
  hostnames: string[];
  /** `scrypt$N$r$p$salt$hash` (docs/local-hmi.md "Setting a password hash"); empty: a random first password is logged once. */
  adminPasswordHash: string;
  /** A session ends this long after login, and after `idleTimeoutMs` without a request. */
  sessionTtlMs: number;
  idleTimeoutMs: number;
  loginRateLimit: LoginRateLimit;
  /** The Processor's store (read-only); empty: DCMMS_PROCESSOR_STORE, set by the recipe. */
  storePath: string;
  /** The Aggregator's rollups (read-only); empty: DCMMS_AGGREGATOR_DB, set by the recipe. */
  rollupPath: string;
  /** LocalHmi's own SQLite file (users, sessions, audit, shelves); relative to its work folder. */
  dbPath: string;
  /** IANA time zone of the site: "energy today" starts at its local midnight. */
  timeZone: string;
  points: HmiPoints;
  /** Assets kept in memory with their last values (the rest are dropped and counted). */
  maxAssets: number;
  /** SSE clients at once, and the events queued per client before it is dropped as too slow. */
  maxSseClients: number;
  sseQueueEvents: number;
  /** Alarm history kept in memory (cleared alarms, newest first). */
  alarmHistory: number;
  /** A control request with no decision from LocalControl after this is reported failed. */
  controlTimeoutMs: number;
}

const POINT = { type: 'string', minLength: 1, maxLength: 128 } as const;
const DAY = 86_400_000;

export const LOCAL_HMI_CONFIG_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'siteId', 'metricsIntervalMs', 'logLevel', 'port', 'bindAddress', 'tls', 'hostnames', 'adminPasswordHash', 'sessionTtlMs', 'idleTimeoutMs', 'loginRateLimit',
    'storePath', 'rollupPath', 'dbPath', 'timeZone', 'points', 'maxAssets', 'maxSseClients', 'sseQueueEvents', 'alarmHistory', 'controlTimeoutMs',
  ],
  properties: {
    ...BASE_CONFIG_PROPERTIES,
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    bindAddress: { type: 'string', minLength: 1, maxLength: 64 },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['certPath', 'keyPath'],
      properties: { certPath: { type: 'string', maxLength: 1024 }, keyPath: { type: 'string', maxLength: 1024 } },
    },
    hostnames: { type: 'array', maxItems: 32, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$' } },
    adminPasswordHash: { type: 'string', maxLength: 512 },
    sessionTtlMs: { type: 'integer', minimum: 60_000, maximum: 30 * DAY },
    idleTimeoutMs: { type: 'integer', minimum: 60_000, maximum: DAY },
    loginRateLimit: {
      type: 'object',
      additionalProperties: false,
      required: ['maxPerAddress', 'maxPerUser', 'windowMs'],
      properties: {
        maxPerAddress: { type: 'integer', minimum: 1, maximum: 10_000 },
        maxPerUser: { type: 'integer', minimum: 1, maximum: 10_000 },
        windowMs: { type: 'integer', minimum: 1000, maximum: DAY },
      },
    },
    storePath: { type: 'string', maxLength: 1024 },
    rollupPath: { type: 'string', maxLength: 1024 },
    dbPath: { type: 'string', minLength: 1, maxLength: 1024 },
    timeZone: { type: 'string', minLength: 1, maxLength: 64 },
    points: {
      type: 'object',
      additionalProperties: false,
      required: ['inverterPower', 'inverterDcPower', 'inverterState', 'inverterEnergy', 'meterPower', 'meterEnergy', 'irradiance', 'ambient', 'module'],
      properties: { inverterPower: POINT, inverterDcPower: POINT, inverterState: POINT, inverterEnergy: POINT, meterPower: POINT, meterEnergy: POINT, irradiance: POINT, ambient: POINT, module: POINT },
    },
    maxAssets: { type: 'integer', minimum: 1, maximum: 10_000 },
    maxSseClients: { type: 'integer', minimum: 1, maximum: 1000 },
    sseQueueEvents: { type: 'integer', minimum: 16, maximum: 100_000 },
    alarmHistory: { type: 'integer', minimum: 10, maximum: 100_000 },
    controlTimeoutMs: { type: 'integer', minimum: 1000, maximum: 3_600_000 },
  },
};

export const LOCAL_HMI_DEFAULTS: LocalHmiConfig = {
  ...BASE_DEFAULTS,
  port: 8443,
  bindAddress: '0.0.0.0',
  tls: { certPath: '', keyPath: '' },
  hostnames: [],
  adminPasswordHash: '',
  sessionTtlMs: 12 * 3600_000,
  idleTimeoutMs: 30 * 60_000,
  loginRateLimit: { maxPerAddress: 10, maxPerUser: 5, windowMs: 15 * 60_000 },
  storePath: '',
  rollupPath: '',
  dbPath: 'local-hmi.db',
  timeZone: 'UTC',
  points: {
    inverterPower: '103.W',
    inverterDcPower: '103.DCW',
    inverterState: '103.St',
    inverterEnergy: '103.WH',
    meterPower: '203.W',
    meterEnergy: '203.TotWhExp',
    irradiance: 'poa',
    ambient: 'ambientTemp',
    module: 'moduleTemp',
  },
  maxAssets: 2000,
  maxSseClients: 50,
  sseQueueEvents: 1000,
  alarmHistory: 2000,
  controlTimeoutMs: 60_000,
};

/** What the schema cannot say: both TLS paths or neither, a time zone Intl knows, a hash we can read. */
export function checkLocalHmiConfig(c: Readonly<LocalHmiConfig>): void {
  if ((c.tls.certPath === '') !== (c.tls.keyPath === '')) throw new ConfigError('tls', 'tls: give both certPath and keyPath (PEM files), or neither to have a certificate generated in the work folder');
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: c.timeZone });
  } catch {
    throw new ConfigError('timeZone', `timeZone: ${JSON.stringify(c.timeZone)} is not an IANA time zone this Node knows (e.g. UTC, Europe/Madrid)`);
  }
  if (c.adminPasswordHash !== '' && !parsePasswordHash(c.adminPasswordHash)) {
    throw new ConfigError('adminPasswordHash', 'adminPasswordHash: not a password hash this component reads; allowed: empty, or scrypt$N$r$p$<salt base64>$<hash base64> (docs/local-hmi.md "Setting a password hash")');
  }
}

export const localHmiConfigSpec: ConfigSpec<LocalHmiConfig> = { schema: LOCAL_HMI_CONFIG_SCHEMA, defaults: LOCAL_HMI_DEFAULTS, check: checkLocalHmiConfig };
