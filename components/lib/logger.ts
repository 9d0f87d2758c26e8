/**
 * Structured JSON-lines logger.
 *
 * One JSON object per line on stdout (Greengrass captures a component's stdout into
 * `logs/<component>.log`), written synchronously so that the last lines before a crash or a
 * SIGKILL are not lost in a buffer. Child loggers bind fields such as component and asset.
 */
import { writeSync } from 'node:fs';

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
  /** Where lines go; defaults to a synchronous write on fd 1. */
  write?: (line: string) => void;
  /** Injected clock (ms since epoch). */
  now?: () => number;
}

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && v in LEVELS;
}

function serializeError(err: Error): LogFields {
  const out: LogFields = { type: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (err.stack) out.stack = err.stack;
  return out;
}

function normalise(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v instanceof Error ? serializeError(v) : typeof v === 'bigint' ? v.toString() : v;
  }
  return out;
}

export function createLogger(bindings: LogFields = {}, opts: LoggerOptions = {}): Logger {
  const levelRef: LevelRef = opts.levelRef ?? { level: opts.level ?? 'info' };
  const now = opts.now ?? Date.now;
  const write = opts.write ?? ((line: string) => writeSync(1, line));

  const emit = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVELS[lvl] < LEVELS[levelRef.level]) return;
    const record = { time: new Date(now()).toISOString(), level: lvl, ...bindings, msg, ...(fields ? normalise(fields) : {}) };
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      // A circular or otherwise unserialisable field must not take the caller down.
      line = JSON.stringify({ time: record.time, level: lvl, ...bindings, msg, logError: 'unserialisable fields' });
    }
    try {
      write(line + '\n');
    } catch {
      // stdout closed (EPIPE) or full (EAGAIN): logging must never crash the process.
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
    child: (more) => createLogger({ ...bindings, ...more }, { ...opts, levelRef }),
  };
}

/** A logger that drops everything; for tests that do not look at logs. */
export const silentLogger: Logger = createLogger({}, { write: () => undefined, level: 'error' });
