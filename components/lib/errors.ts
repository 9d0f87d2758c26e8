/**
 * The error catalogue. Every error a component raises on purpose carries a stable `code` and a
 * `kind` that says what the caller must do about it (docs/conventions.md "Errors"):
 *
 * - `transient`: I/O that may work next time (IPC disconnected, a Modbus timeout, the cloud down).
 *   Back off, retry, count it. Never fatal on its own.
 * - `fatal`: bad configuration or a broken invariant. Log a clear message and exit non-zero so
 *   Greengrass marks the component ERRORED and, after three within an hour, BROKEN, which rolls a
 *   bad deployment back (nucleus lifecyclemanager/Lifecycle.java; docs/local-runtime.md).
 * - `input`: bad data from the field or the bus. Reject it, count it under a named reason, log it;
 *   never take the process down.
 */

export type ErrorKind = 'transient' | 'fatal' | 'input';

/** Stable codes. Add here rather than inventing strings at the throw site. */
export const ErrorCode = {
  // transient
  IPC_DISCONNECTED: 'IPC_DISCONNECTED',
  IPC_CALL_FAILED: 'IPC_CALL_FAILED',
  IPC_TIMEOUT: 'IPC_TIMEOUT',
  QUEUE_OVERFLOW: 'QUEUE_OVERFLOW',
  // fatal
  CONFIG_INVALID: 'CONFIG_INVALID',
  IPC_UNAUTHORIZED: 'IPC_UNAUTHORIZED',
  IPC_UNAVAILABLE: 'IPC_UNAVAILABLE',
  INVARIANT: 'INVARIANT',
  BUS_CLOSED: 'BUS_CLOSED',
  // input
  PAYLOAD_INVALID: 'PAYLOAD_INVALID',
  PAYLOAD_NOT_JSON: 'PAYLOAD_NOT_JSON',
  TOPIC_INVALID: 'TOPIC_INVALID',
  HANDLER_FAILED: 'HANDLER_FAILED',
} as const;
export type ErrorCodeName = (typeof ErrorCode)[keyof typeof ErrorCode];

export class EdgeError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(kind: ErrorKind, code: string, message: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.code = code;
    this.details = opts.details;
  }
}

/** Retry with backoff and count it. */
export class TransientError extends EdgeError {
  constructor(code: string, message: string, opts?: { cause?: unknown; details?: Record<string, unknown> }) {
    super('transient', code, message, opts);
  }
}

/** Exit non-zero with this message. */
export class FatalError extends EdgeError {
  constructor(code: string, message: string, opts?: { cause?: unknown; details?: Record<string, unknown> }) {
    super('fatal', code, message, opts);
  }
}

/** Configuration that does not validate: fatal, and the message names the key and what is allowed. */
export class ConfigError extends FatalError {
  /** JSON-pointer-ish path of the offending key, e.g. `reportIntervalMs` or `expectedComponents/2`. */
  readonly key: string;
  constructor(key: string, message: string, opts?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(ErrorCode.CONFIG_INVALID, message, opts);
    this.key = key;
  }
}

/** Reject, count under `reason`, log. */
export class InputError extends EdgeError {
  /** The counter name the rejection is filed under (metrics `rejections[reason]`). */
  readonly reason: string;
  constructor(reason: string, message: string, opts?: { cause?: unknown; details?: Record<string, unknown>; code?: string }) {
    super('input', opts?.code ?? ErrorCode.PAYLOAD_INVALID, message, opts);
    this.reason = reason;
  }
}

export function isEdgeError(err: unknown): err is EdgeError {
  return err instanceof EdgeError;
}

/** A short, loggable message for anything thrown. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

/** The stable code of a thrown value; `UNKNOWN` for errors outside the catalogue. */
export function errorCode(err: unknown): string {
  if (err instanceof EdgeError) return err.code;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'UNKNOWN';
}
