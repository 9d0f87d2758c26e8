/**
 * Component configuration (docs/conventions.md "Configuration"): one JSON schema and one defaults
 * object per component; read with GetConfiguration (keyPath [] = the whole configuration),
 * validated, then frozen; re-read on SubscribeToConfigurationUpdate.
 *
 * Greengrass specifics (Greengrass Developer Guide, "AWS IoT Greengrass component recipe reference"
 * and "Update component configurations"):
 *  - numbers may come back as floats or strings (the docs even suggest strings in recipes), so
 *    ajv coerces scalars to the type the schema names (`"300000"` -> 300000; 10000.0 is an integer);
 *  - `accessControl` lives in the same configuration tree but belongs to the nucleus: ignored;
 *  - a deployment merges over the existing configuration and keeps keys a newer default no longer
 *    has, so an unknown top-level key is logged and ignored, never fatal (a fatal here would turn
 *    every upgrade that renames a key into BROKEN and a rollback).
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { Bus, Subscription } from './bus-types';
import { ConfigError, errorMessage } from './errors';
import { isSecretKey, redactSecrets, REDACTED, type LogLevel, type Logger } from './logger';
import type { Metrics } from './metrics';

export { ConfigError } from './errors';

/** JSON Schema (draft-07 keywords) describing a component's configuration object. */
export type JsonSchema = Readonly<Record<string, unknown>>;

export interface ConfigSpec<C> {
  readonly schema: JsonSchema;
  readonly defaults: C;
  /**
   * Checks the schema cannot express (cross-field rules, alarm rule semantics, a time zone Intl
   * knows). Throws ConfigError naming the key. Runs after the schema, at start, when a deployment
   * proposes a configuration (validation) and when one is applied.
   */
  readonly check?: (config: Readonly<C>) => void;
}

/** Keys every component has. */
export interface BaseConfig {
  siteId: string;
  metricsIntervalMs: number;
  logLevel: LogLevel;
}

/** Schema fragments for BaseConfig, for each component's schema to spread into `properties`. */
export const BASE_CONFIG_PROPERTIES = {
  siteId: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'Site this gateway serves; the {siteId} in every topic.' },
  metricsIntervalMs: { type: 'integer', minimum: 1000, maximum: 3600000, description: 'How often the component publishes its health metrics.' },
  logLevel: { type: 'string', enum: ['debug', 'info', 'warn', 'error'] },
} as const;

export const BASE_DEFAULTS: BaseConfig = { siteId: 'demo-site', metricsIntervalMs: 10000, logLevel: 'info' };

/** Keys in the configuration tree that belong to Greengrass, not to the component. */
const GREENGRASS_KEYS = new Set(['accessControl']);

const ajv = new Ajv({ allErrors: true, coerceTypes: true, strict: true, useDefaults: false });
const compiled = new WeakMap<object, ValidateFunction>();

function compile(schema: JsonSchema): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    v = ajv.compile(schema as Record<string, unknown>);
    compiled.set(schema, v);
  }
  return v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Greengrass merge semantics ("Update component configurations"): objects merge key by key; scalars and arrays replace. */
export function mergeConfig(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? structuredClone(base) : structuredClone(over);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? mergeConfig(out[k], v) : structuredClone(v);
  return out;
}

export function deepFreeze<T>(v: T): Readonly<T> {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as Record<string, unknown>)) deepFreeze(x);
  }
  return v;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
}

function keyOf(e: ErrorObject): string {
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty?: unknown }).missingProperty);
    return path ? `${path}.${missing}` : missing;
  }
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty?: unknown }).additionalProperty);
    return path ? `${path}.${extra}` : extra;
  }
  return path || '(root)';
}

function valueAt(data: unknown, instancePath: string): unknown {
  let v = data;
  for (const seg of instancePath.split('/').slice(1)) v = isPlainObject(v) || Array.isArray(v) ? (v as Record<string, unknown>)[seg] : undefined;
  return v;
}

/**
 * The offending value as a ConfigError quotes it. The message is logged and goes back to the
 * cloud in the deployment's validity report, so a secret's value never appears in it: a value at
 * or under a secret-looking key is "[redacted]", as the logger writes it.
 */
function quoted(data: unknown, instancePath: string): string | undefined {
  if (instancePath.split('/').some((seg) => isSecretKey(seg))) return JSON.stringify(REDACTED);
  return JSON.stringify(redactSecrets(valueAt(data, instancePath)));
}

function explain(e: ErrorObject, data: unknown): string {
  const key = keyOf(e);
  const got = quoted(data, e.instancePath);
  switch (e.keyword) {
    case 'required':
      return `configuration key '${key}' is required`;
    case 'additionalProperties':
      return `configuration key '${key}' is not allowed here`;
    case 'enum':
      return `configuration key '${key}' must be one of ${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((x) => JSON.stringify(x)).join(', ')} (got ${got})`;
    case 'pattern':
      return `configuration key '${key}' must match ${String((e.params as { pattern?: unknown }).pattern)} (got ${got})`;
    default:
      return `configuration key '${key}' ${e.message ?? 'is invalid'} (got ${got})`;
  }
}

/**
 * Validate a configuration as Greengrass returns it: drop Greengrass's keys, warn about and drop
 * unknown top-level keys, apply the defaults object, coerce, validate, freeze. Throws ConfigError
 * naming the offending key and what is allowed.
 */
export function validateConfig<C>(spec: ConfigSpec<C>, raw: unknown, log?: Logger): Readonly<C> {
  if (raw !== undefined && raw !== null && !isPlainObject(raw)) {
    throw new ConfigError('(root)', `configuration must be an object (got ${Array.isArray(raw) ? 'array' : typeof raw})`);
  }
  const known = new Set(Object.keys((spec.schema['properties'] as Record<string, unknown> | undefined) ?? {}));
  const own: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [k, v] of Object.entries(raw ?? {})) {
    if (GREENGRASS_KEYS.has(k)) continue;
    if (known.size > 0 && !known.has(k)) ignored.push(k);
    else own[k] = v;
  }
  if (ignored.length > 0) log?.warn('ignoring unknown configuration keys', { keys: ignored, allowed: [...known] });
  // Work on a copy: ajv coerces in place, and the caller's object must not change under it.
  const data = mergeConfig(spec.defaults, own);
  const validate = compile(spec.schema);
  if (!validate(data)) {
    const errors = validate.errors ?? [];
    const first = errors[0];
    const message = errors.map((e) => explain(e, data)).join('; ');
    throw new ConfigError(first ? keyOf(first) : '(root)', message, { details: { errors: errors.map((e) => ({ key: keyOf(e), keyword: e.keyword, message: e.message })) } });
  }
  const config = deepFreeze(data as C);
  spec.check?.(config);
  return config;
}

/** Read (GetConfiguration keyPath []) and validate. */
export async function loadConfig<C>(bus: Pick<Bus, 'getConfiguration'>, spec: ConfigSpec<C>, log?: Logger): Promise<Readonly<C>> {
  const raw = await bus.getConfiguration([]);
  return validateConfig(spec, raw, log);
}

export interface ConfigWatchOptions<C> {
  bus: Pick<Bus, 'getConfiguration' | 'subscribeToConfigurationUpdate'>;
  spec: ConfigSpec<C>;
  initial: Readonly<C>;
  /** Called with the new frozen configuration when it validates and differs. */
  onChange: (next: Readonly<C>, prev: Readonly<C>) => void | Promise<void>;
  log: Logger;
  metrics?: Metrics;
}

export interface ConfigWatch<C> extends Subscription {
  readonly current: Readonly<C>;
  /** Resolves when no reload is running (for tests and orderly shutdown). */
  idle(): Promise<void>;
}

/**
 * Live configuration: every SubscribeToConfigurationUpdate event (the nucleus sends one per changed
 * node, ConfigStoreIPCEventStreamAgent.java)
 * triggers a re-read of the whole configuration; reloads are serialised and coalesced. A new
 * configuration that does not validate is logged and counted, and the old one stays.
 */
export async function watchConfig<C>(o: ConfigWatchOptions<C>): Promise<ConfigWatch<C>> {
  let current = o.initial;
  let running: Promise<void> | undefined;
  let again = false;

  const once = async (): Promise<void> => {
    let next: Readonly<C>;
    try {
      next = validateConfig(o.spec, await o.bus.getConfiguration([]), o.log);
    } catch (err) {
      o.metrics?.recordError(err);
      o.log.error('configuration update rejected; keeping the current configuration', {
        key: err instanceof ConfigError ? err.key : undefined,
        err: errorMessage(err),
      });
      return;
    }
    if (deepEqual(next, current)) return;
    const prev = current;
    current = next;
    // The whole configuration, for the record; the logger writes every value under a
    // secret-looking key (password, secretAccessKey, token, ...) as "[redacted]".
    o.log.info('configuration updated', { config: next });
    try {
      await o.onChange(next, prev);
    } catch (err) {
      o.metrics?.recordError(err);
      o.log.error('applying the configuration update failed', { err });
    }
  };

  const reload = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await once();
      } while (again);
    })().finally(() => {
      running = undefined;
    });
  };

  const sub = await o.bus.subscribeToConfigurationUpdate(() => reload(), []);
  return {
    get current() {
      return current;
    },
    idle: async () => {
      while (running) await running;
    },
    close: () => sub.close(),
  };
}
