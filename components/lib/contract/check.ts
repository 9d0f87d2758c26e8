/**
 * A small toolkit for hand-written runtime validators: payloads from the bus are `unknown` until
 * one of these says otherwise (docs/conventions.md "Types"). A validator returns either the typed
 * value or a reason (`points.W.q: must be one of good|uncertain|...`) and a counter-friendly code.
 *
 * Validators check what they know and let unknown fields through: within one schemaVersion the
 * contract only grows by optional fields, so an older consumer accepts a newer producer.
 */

/**
 * Identifiers that become one topic level: no `/`, no MQTT wildcards, no policy glob `*`, bounded
 * length. Site ids in configuration use the stricter `^[A-Za-z0-9_-]{1,64}$`.
 */
export const ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;

export function isTopicId(v: unknown): v is string {
  return typeof v === 'string' && ID_PATTERN.test(v);
}

/** Rejection codes, used as metrics `rejections` reasons. */
export type RejectCode = 'invalid_payload' | 'unsupported_schema_version';

export type Validation<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string; readonly code: RejectCode };
export type Validator<T> = (input: unknown) => Validation<T>;

class Invalid {
  constructor(
    readonly path: string,
    readonly message: string,
    readonly code: RejectCode = 'invalid_payload',
  ) {}
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') return v.length > 40 ? `string(${v.length})` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads typed fields from one object, failing with a path-qualified reason. */
export class Fields {
  constructor(
    readonly rec: Record<string, unknown>,
    readonly path: string,
  ) {}

  static of(v: unknown, path: string): Fields {
    if (!isRecord(v)) throw new Invalid(path || '(root)', `must be an object (got ${describe(v)})`);
    return new Fields(v, path);
  }

  private at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  fail(key: string, message: string, code?: RejectCode): never {
    throw new Invalid(this.at(key), message, code);
  }

  has(key: string): boolean {
    return this.rec[key] !== undefined;
  }

  str(key: string, opts: { max?: number; pattern?: RegExp; min?: number } = {}): string {
    const v = this.rec[key];
    if (typeof v !== 'string') return this.fail(key, `must be a string (got ${describe(v)})`);
    if (v.length < (opts.min ?? 1)) this.fail(key, 'must not be empty');
    if (v.length > (opts.max ?? 256)) this.fail(key, `must be at most ${opts.max ?? 256} characters`);
    if (opts.pattern && !opts.pattern.test(v)) this.fail(key, `must match ${opts.pattern.source} (got ${describe(v)})`);
    return v;
  }

  optStr(key: string, opts: { max?: number; pattern?: RegExp } = {}): string | undefined {
    return this.has(key) ? this.str(key, opts) : undefined;
  }

  id(key: string): string {
    return this.str(key, { pattern: ID_PATTERN, max: 64 });
  }

  num(key: string, opts: { min?: number; max?: number; int?: boolean } = {}): number {
    const v = this.rec[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(key, `must be a finite number (got ${describe(v)})`);
    if (opts.int && !Number.isSafeInteger(v)) this.fail(key, `must be an integer (got ${v})`);
    if (opts.min !== undefined && v < opts.min) this.fail(key, `must be >= ${opts.min} (got ${v})`);
    if (opts.max !== undefined && v > opts.max) this.fail(key, `must be <= ${opts.max} (got ${v})`);
    return v;
  }

  optNum(key: string, opts: { min?: number; max?: number; int?: boolean } = {}): number | undefined {
    return this.has(key) ? this.num(key, opts) : undefined;
  }

  /** A number or null (null = no value, e.g. a bad read). */
  numOrNull(key: string): number | null {
    if (this.rec[key] === null) return null;
    return this.num(key);
  }

  bool(key: string): boolean {
    const v = this.rec[key];
    if (typeof v !== 'boolean') return this.fail(key, `must be a boolean (got ${describe(v)})`);
    return v;
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.rec[key];
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      return this.fail(key, `must be one of ${values.join('|')} (got ${describe(v)})`);
    }
    return v as T;
  }

  obj(key: string): Fields {
    return Fields.of(this.rec[key], this.at(key));
  }

  optObj(key: string): Fields | undefined {
    return this.has(key) && this.rec[key] !== null ? this.obj(key) : undefined;
  }

  arr(key: string, opts: { max?: number } = {}): unknown[] {
    const v = this.rec[key];
    if (!Array.isArray(v)) return this.fail(key, `must be an array (got ${describe(v)})`);
    if (v.length > (opts.max ?? 10000)) this.fail(key, `must have at most ${opts.max ?? 10000} items`);
    return v;
  }

  /** Each own key of a map-like object, with a Fields over its (object) value. */
  entries(max: number): Array<[string, unknown]> {
    const list = Object.entries(this.rec);
    if (list.length > max) throw new Invalid(this.path, `must have at most ${max} entries (got ${list.length})`);
    return list;
  }

  /** `schemaVersion` must be exactly the one this build understands. */
  schemaVersion(expected: number): void {
    const v = this.rec['schemaVersion'];
    if (typeof v !== 'number') this.fail('schemaVersion', `must be a number (got ${describe(v)})`);
    if (v !== expected) this.fail('schemaVersion', `unsupported schemaVersion ${describe(v)} (this build reads ${expected})`, 'unsupported_schema_version');
  }
}

/** Wrap a throwing body into a Validator. The body returns the (same) input, now typed. */
export function validator<T>(body: (f: Fields) => void): Validator<T> {
  return (input: unknown) => {
    try {
      body(Fields.of(input, ''));
      return { ok: true, value: input as T };
    } catch (err) {
      if (err instanceof Invalid) return { ok: false, reason: `${err.path}: ${err.message}`, code: err.code };
      throw err;
    }
  };
}

/** Run a nested check (an item of an array or a map value) under a path. */
export function nested(value: unknown, path: string, body: (f: Fields) => void): void {
  body(Fields.of(value, path));
}

/** Fail at a path from inside a body when no Fields is at hand. */
export function invalid(path: string, message: string): never {
  throw new Invalid(path, message);
}
