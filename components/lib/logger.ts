/**
 * Structured JSON-lines logger: pino behind our own small interface.
 *
 * One JSON object per line on stdout (Greengrass captures a component's stdout into
 * `logs/<component>.log`): `time` (ISO 8601), `level` by name, the bindings, the fields and `msg`.
 * Lines are written synchronously, so the last lines before a crash or a SIGKILL are not lost in a
 * buffer. Child loggers bind fields such as component and asset.
 *
 * Callers see only `Logger`: pino's own API (merging-object-first calls, its numeric levels,
 * printf-style messages) stays in this file. Before pino sees them, fields go through `prepare`:
 * errors become { type, message, code, stack }, bigints decimal strings, circular references
 * "[Circular]", and every value under a secret-looking key (any depth) "[redacted]".
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(bindings: LogFields): Logger;
  readonly level: LogLevel;
}

/** A shared, mutable level: a logger built with it (and its children) follow changes at once. */
export interface LevelRef {
  level: LogLevel;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Overrides `level` when given, so a live configuration update can change the level. */
  levelRef?: LevelRef;
  /** Where lines go (one call per line, newline included); defaults to a synchronous write on fd 1. */
  write?: (line: string) => void;
  /** Injected clock (ms since epoch). */
  now?: () => number;
}

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && Object.hasOwn(LEVELS, v);
}

function serializeError(err: Error): LogFields {
  const out: LogFields = { type: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (err.stack) out.stack = err.stack;
  return out;
}

/** Below this many levels of nesting a value is written as a marker (JSON.stringify would overflow the stack first). */
const MAX_DEPTH = 64;

/**
 * A logged value as it may be written: the same reference when nothing in it needs changing (the
 * common case costs no copy), otherwise a copy. The caller's objects are never modified
 * (configuration objects are frozen). `ancestors` holds the objects on the path from the root.
 */
function prepareValue(v: unknown, ancestors: object[]): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof Error) return serializeError(v);
  if (ancestors.includes(v)) return '[Circular]';
  if (ancestors.length >= MAX_DEPTH) return '[too deep]';
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    // What JSON.stringify would write (Date, Buffer, a class's own form), cleaned the same way.
    const j: unknown = toJSON.call(v);
    return j === v ? j : prepareValue(j, ancestors);
  }
  ancestors.push(v);
  try {
    if (Array.isArray(v)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        const c = prepareValue(x, ancestors);
        if (out === undefined && c !== x) out = v.slice(0, i);
        if (out !== undefined) out.push(c);
      }
      return out ?? v;
    }
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    let out: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const x = o[k];
      const c = x instanceof ShownSecret ? x.value : x !== undefined && isSecretKey(k) ? REDACTED : prepareValue(x, ancestors);
      if (out === undefined && c !== x) {
        out = {};
        for (let j = 0; j < i; j++) setKey(out, keys[j]!, o[keys[j]!]);
      }
      if (out !== undefined) setKey(out, k, c);
    }
    return out ?? o;
  } finally {
    ancestors.pop();
  }
}

/**
 * An own "__proto__" key (JSON.parse makes those, so configurations can hold one) stays a plain
 * key instead of setting the copy's prototype. (Copies keep Object.prototype: JSON.stringify is
 * markedly slower on null-prototype objects.)
 */
function setKey(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** What a secret's value is written as. */
export const REDACTED = '[redacted]';

/**
 * A secret the caller means to log, as it is: the one deliberate exception to redaction (LocalHmi's
 * first-start admin password, logged once so the installer can read it: docs/local-hmi.md). Only a
 * string wrapped with `showSecret` escapes; any other value under a secret-looking key is redacted.
 */
export class ShownSecret {
  constructor(readonly value: string) {}
  toJSON(): string {
    return this.value;
  }
}
export function showSecret(value: string): ShownSecret {
  return new ShownSecret(value);
}

/**
 * Key names whose values never reach a log, matched case-insensitively at the end of the key, with
 * or without `_`/`-` inside: `password`, `dbPassword`, `secret_access_key`, `AWS_SESSION_TOKEN`,
 * `cli_auth_token`, `apiKey`, `privateKey`, `credentials`, `Authorization`, `cookie`. Matching the
 * end catches the prefixed names configurations use (`mqttPassword`, `clientSecret`); the price is
 * an occasional harmless false positive such as a pagination `nextToken`.
 */
const SECRET_KEY = /(?:passw(?:or)?d|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credentials?|authorization|cookie)$/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/**
 * A copy of `v` as the logger would write it: values under secret-looking keys (any depth)
 * "[redacted]", errors serialised, bigints as strings, circular references marked. For text built
 * from data outside a log call (a ConfigError message quoting a value). `v` is left alone.
 */
export function redactSecrets(v: unknown): unknown {
  return prepareValue(v, []);
}

/**
 * `prepareValue` for a whole fields (or bindings) object, plus: a field named like one of the
 * line's own keys (time, level, msg) is written as `_time`, `_level`, `_msg` so it cannot replace
 * them or appear twice.
 */
export function prepare(fields: LogFields): LogFields {
  let out = prepareValue(fields, []) as LogFields;
  if (Object.hasOwn(out, 'msg') || Object.hasOwn(out, 'level') || Object.hasOwn(out, 'time')) {
    const renamed: LogFields = {};
    for (const [k, x] of Object.entries(out)) setKey(renamed, k === 'msg' || k === 'level' || k === 'time' ? `_${k}` : k, x);
    out = renamed;
  }
  return out;
}

/**
 * Most a failed stdout may hold back. sonic-boom keeps bytes it could not write after an error
 * other than EAGAIN (EIO; ENOSPC when stdout is a file on a full disk) and sends them before the
 * next line; past this it drops lines instead of growing without bound.
 */
const STDOUT_MAX_PENDING_BYTES = 16 * 1024 * 1024;

let stdout: DestinationStream | undefined;

/**
 * Node puts a pipe on fd 1 into non-blocking mode as soon as anything touches process.stdout
 * (console.log, an SDK). A full pipe then fails a write with EAGAIN, and sonic-boom's answer is to
 * sleep 100 ms and try again: the whole event loop stalls in 100 ms steps even when the reader is
 * only a moment behind. Making the pipe blocking again (libuv's uv_stream_set_blocking, the call
 * Node itself makes for a TTY on stdout) lets the kernel hold the write exactly as long as the
 * reader needs. Best effort: a file or a TTY is blocking already, and if anything makes the pipe
 * non-blocking again later, sonic-boom's retry still keeps every line.
 */
function makeStdoutBlocking(): void {
  try {
    const handle = (process.stdout as unknown as { _handle?: { setBlocking?: (blocking: boolean) => number } })._handle;
    handle?.setBlocking?.(true);
  } catch {
    // No usable stdout stream: nothing to change.
  }
}

/**
 * fd 1 through pino's synchronous destination (sonic-boom, sync: true), one per process: a line is
 * written before the log call returns, and a full non-blocking pipe (EAGAIN) is retried every
 * 100 ms until the reader takes it, so a slow reader slows logging down instead of losing lines.
 * A closed stdout (EPIPE) turns the destination into a no-op; other errors are absorbed here
 * (logging must never crash the process).
 */
function stdoutDestination(): DestinationStream {
  if (!stdout) {
    makeStdoutBlocking();
    const d = pino.destination({ dest: 1, sync: true, maxLength: STDOUT_MAX_PENDING_BYTES });
    d.on('error', () => undefined);
    stdout = d;
  }
  return stdout;
}

function createRoot(opts: LoggerOptions): PinoLogger {
  const now = opts.now ?? Date.now;
  const write = opts.write;
  const destination: DestinationStream = write ? { write: (line: string) => write(line) } : stdoutDestination();
  return pino(
    {
      // Levels are decided in front of pino (LevelRef); pino writes whatever reaches it.
      level: 'debug',
      // No pid and hostname: Greengrass already files the log under the component on this device.
      base: null,
      messageKey: 'msg',
      timestamp: () => `,"time":"${new Date(now()).toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
      // Errors are serialised in prepare(); pino's default `err` serializer would redo objects that merely look like one.
      serializers: { err: (v: unknown) => v },
    },
    destination,
  );
}

function wrap(root: PinoLogger, bindings: LogFields, levelRef: LevelRef): Logger {
  let p = root;
  /** Bindings as written, to drop a field that only repeats one (a key must appear once in the line). */
  const boundJson = new Map<string, string>();
  if (Object.keys(bindings).length > 0) {
    let bound: LogFields;
    try {
      bound = prepare(bindings);
    } catch {
      bound = { logError: 'unserialisable bindings' };
    }
    p = root.child(bound);
    for (const [k, v] of Object.entries(bound)) boundJson.set(k, JSON.stringify(v));
  }
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVELS[lvl] < LEVELS[levelRef.level]) return;
    let obj: LogFields | undefined;
    try {
      obj = fields === undefined ? undefined : prepare(fields);
      if (obj !== undefined && boundJson.size > 0) {
        for (const k of Object.keys(obj)) if (boundJson.get(k) === JSON.stringify(obj[k])) delete obj[k];
      }
    } catch {
      // A field whose toJSON throws must not take the caller down.
      obj = { logError: 'unserialisable fields' };
    }
    try {
      if (obj === undefined) p[lvl](msg);
      else p[lvl](obj, msg);
    } catch {
      // A destination that throws: logging must never crash the process.
    }
  };
  return {
    get level() {
      return levelRef.level;
    },
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    // Bindings are merged here and bound once on the root, so a child's key replaces its parent's
    // instead of appearing twice in the line.
    child: (more) => wrap(root, { ...bindings, ...more }, levelRef),
  };
}

export function createLogger(bindings: LogFields = {}, opts: LoggerOptions = {}): Logger {
  const levelRef: LevelRef = opts.levelRef ?? { level: opts.level ?? 'info' };
  return wrap(createRoot(opts), bindings, levelRef);
}

/** A logger that drops everything; for tests that do not look at logs. */
export const silentLogger: Logger = createLogger({}, { write: () => undefined, level: 'error' });
