/**
 * What the notification queue hands to a channel, and the one small interface every channel
 * (e-mail, SMS, webhook; relays later) implements. After the Uplink's exporters
 * (components/uplink/exporters/types.ts): the queue and the channel worker own ordering, batching,
 * backoff and durability; a channel only turns a batch into one accepted delivery or an error that
 * says whether to retry.
 */
import type { AlarmMessage } from '../../lib/contract';

export type NotificationKind = 'transition' | 'escalation';

/** One queued notification: one alarm transition (or one escalation) for one channel. */
export interface Notification {
  /** Queue row id: increasing, never reused. */
  readonly id: number;
  readonly channel: string;
  readonly kind: NotificationKind;
  readonly alarm: AlarmMessage;
  /** When it was queued (gateway clock, ms). */
  readonly queuedAt: number;
  /** Failed attempts so far. */
  readonly attempts: number;
  /** What a channel saved of a partly done delivery (SMS: parts sent per number); null when none. */
  readonly progress: string | null;
}

/** What a channel may use while sending. */
export interface SendContext {
  readonly siteId: string;
  /** Readable site label for subjects and texts (defaults to siteId). */
  readonly siteName: string;
  /** For `escalation` notifications: how long the alarm went unacknowledged. */
  readonly escalateAfterMs: number;
  /** Remember a partly done delivery durably, so a retry does not repeat what was done. */
  saveProgress(id: number, progress: string): void;
  /** Count a part of a delivery the destination refused for good (a number the network rejects). */
  refusedPart(reason: string, detail: Record<string, unknown>): void;
}

/**
 * A channel. `send` resolves once the destination accepted every notification of the batch (SMTP
 * 250 after DATA, +CMGS for every part and number, a 2xx); then the batch leaves the queue. It
 * rejects with a `ChannelError` otherwise: `refused` (the destination answered and will never take
 * this batch: drop it, counted) or not (away, busy, timed out: retry the same batch later).
 */
export interface NotificationChannel {
  readonly name: string;
  readonly type: string;
  /** Most notifications per send (e-mail: a digest; SMS and webhook: 1). */
  readonly maxBatch: number;
  /** At most one send per this interval (0: as soon as something is queued). */
  readonly batchIntervalMs: number;
  send(batch: readonly Notification[], ctx: SendContext): Promise<void>;
  /** Ends in-flight work (its send then rejects) and releases every handle; idempotent. */
  close(): Promise<void>;
}

export class ChannelError extends Error {
  /** Stable code for metrics and logs (`SMTP_CONNECT`, `HTTP_503`, `MODEM_TIMEOUT`...). */
  readonly code: string;
  /** The destination answered and refused this batch for good: drop it (counted), do not retry. */
  readonly refused: boolean;
  /** The destination asked to wait this long before the next attempt (HTTP Retry-After). */
  readonly retryAfterMs: number | undefined;
  constructor(code: string, message: string, opts: { cause?: unknown; refused?: boolean; retryAfterMs?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ChannelError';
    this.code = code;
    this.refused = opts.refused === true;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/**
 * The message of anything thrown. Not `instanceof Error`: errors from native code, nodemailer's or
 * another realm's (a test runner's vm) fail that check and would be logged as JSON without their
 * message.
 */
export function messageOf(err: unknown): string {
  const m = typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : undefined;
  if (typeof m === 'string') return m;
  return typeof err === 'string' ? err : String(err);
}
