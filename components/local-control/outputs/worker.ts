/**
 * One worker per channel: takes the channel's oldest notifications from the queue, at most
 * `maxBatch` at a time and at most one send per `batchIntervalMs`, one send in flight, and removes
 * them only when the channel accepted them (docs/local-control-outputs.md "Delivery").
 *
 * - Batching is leading-edge: a transition that finds the channel idle for a whole interval goes
 *   out at once (after the current event-loop turn, so transitions offered together share a mail);
 *   what comes later waits for the interval and goes out together. A full batch is followed at once.
 * - A channel that fails (away, timed out, busy) keeps its batch and retries after an exponential
 *   backoff with jitter (components/lib/backoff.ts), at least as long as a Retry-After asked (up to
 *   backoffMaxMs), until the queue's age bound drops the notifications.
 * - A batch the destination refused for good is dropped, counted and logged; the channel is up.
 */
import { backoffDelay } from '../../lib/backoff';
import type { Clock, TimerHandle } from '../../lib/clock';
import { errorCode } from '../../lib/errors';
import type { LimitedLog } from '../../lib/log-limit';
import type { Logger } from '../../lib/logger';
import type { Metrics } from '../../lib/metrics';
import type { NotificationQueue } from './queue';
import { ChannelError, messageOf, type Notification, type NotificationChannel, type SendContext } from './types';

/** How long close waits for a send in flight after closing its channel. */
const CLOSE_GRACE_MS = 2000;

export type ChannelState = 'idle' | 'sending' | 'waiting' | 'retrying';

export interface ChannelStatus {
  name: string;
  type: string;
  state: ChannelState;
  queued: number;
  /** Queue time of the oldest notification waiting, null when none. */
  oldestQueuedAt: number | null;
  delivered: number;
  refused: number;
  consecutiveFailures: number;
  lastSuccessAt: number | null;
  nextAttemptAt: number | null;
  /** `CODE: message` of the last failure while it lasts; never holds a secret. */
  lastError: string | null;
}

export interface DeliveredEvent {
  channel: string;
  notifications: readonly Notification[];
  /** Gateway time it was accepted. */
  at: number;
}

export interface WorkerOptions {
  channel: NotificationChannel;
  queue: NotificationQueue;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  limited: LimitedLog;
  ctx: SendContext;
  backoffInitialMs: number;
  backoffMaxMs: number;
  maxAgeMs: number;
  random?: () => number;
  onDelivered?: (e: DeliveredEvent) => void;
}

export class ChannelWorker {
  private timer: TimerHandle | undefined;
  private inFlight: Promise<void> | undefined;
  private closed = false;
  private failures = 0;
  private nextAttemptAt: number | null = null;
  private lastSentAt: number | null = null;
  private lastWasFull = false;
  private lastSuccessAt: number | null = null;
  private lastError: string | null = null;
  private delivered = 0;
  private refused = 0;

  constructor(private readonly o: WorkerOptions) {}

  get name(): string {
    return this.o.channel.name;
  }

  /** Something was queued (or the worker starts): send when the interval and backoff allow. */
  kick(): void {
    if (this.closed || this.inFlight || this.timer !== undefined) return;
    const now = this.o.clock.now();
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(0, this.earliest(now) - now));
  }

  private earliest(now: number): number {
    if (this.failures > 0 && this.nextAttemptAt !== null) return this.nextAttemptAt;
    const interval = this.o.channel.batchIntervalMs;
    if (interval > 0 && this.lastSentAt !== null && !this.lastWasFull) return this.lastSentAt + interval;
    return now;
  }

  private pump(): void {
    if (this.closed || this.inFlight) return;
    const { queue, channel, clock } = this.o;
    const now = clock.now();
    // Expired ones are the housekeeping's to count and remove; skipped here so a long outage's
    // leftovers never go out after the age bound.
    const batch = queue.pending(channel.name, channel.maxBatch, now - this.o.maxAgeMs);
    if (batch.length === 0) return;
    this.inFlight = this.send(batch)
      .catch((err: unknown) => this.queueFailed(err))
      .finally(() => {
        this.inFlight = undefined;
        if (!this.closed && queue.depthOf(channel.name) > 0) this.kick();
      });
  }

  /**
   * The queue could not record the outcome (a full disk): the batch stays queued and goes out
   * again (at least once); back off as for a channel failure so the worker does not spin.
   */
  private queueFailed(err: unknown): void {
    if (this.closed) return;
    this.failures += 1;
    this.o.metrics.recordError(err);
    this.lastError = `${errorCode(err)}: ${messageOf(err)}`.slice(0, 512);
    this.nextAttemptAt = this.o.clock.now() + backoffDelay(this.failures, { initialMs: this.o.backoffInitialMs, maxMs: this.o.backoffMaxMs, ...(this.o.random ? { random: this.o.random } : {}) });
    this.o.logger.error('notification queue update failed', { channel: this.o.channel.name, err: messageOf(err) });
  }

  private async send(batch: Notification[]): Promise<void> {
    const { channel, queue, clock, logger, metrics } = this.o;
    let err: unknown;
    try {
      await channel.send(batch, this.o.ctx);
    } catch (e) {
      err = e ?? new Error('channel failed');
    }
    if (this.closed) return; // the batch stays queued: sent again after a restart (at least once)
    const now = clock.now();
    const ids = batch.map((n) => n.id);
    if (err === undefined) {
      queue.remove(ids);
      this.delivered += batch.length;
      metrics.incOut(batch.length);
      this.succeeded(now, batch.length);
      this.o.onDelivered?.({ channel: channel.name, notifications: batch, at: now });
      return;
    }
    if (err instanceof ChannelError && err.refused) {
      const refusal = err;
      const reason = `notify_${channel.type}_refused`;
      queue.drop(ids, `${channel.type}_refused`);
      this.refused += batch.length;
      metrics.drop(reason, batch.length);
      metrics.recordError(refusal);
      this.o.limited(`refused:${channel.name}`, (suppressed) =>
        logger.error('notification refused by the destination; dropped', { channel: channel.name, code: refusal.code, err: refusal.message, notifications: batch.length, alarmIds: batch.map((n) => n.alarm.alarmId).slice(0, 10), suppressed }),
      );
      this.succeeded(now, batch.length);
      return;
    }
    this.failures += 1;
    queue.noteAttempt(ids);
    metrics.recordError(err);
    this.lastError = `${errorCode(err)}: ${messageOf(err)}`.slice(0, 512);
    let delay = backoffDelay(this.failures, { initialMs: this.o.backoffInitialMs, maxMs: this.o.backoffMaxMs, ...(this.o.random ? { random: this.o.random } : {}) });
    if (err instanceof ChannelError && err.retryAfterMs !== undefined) delay = Math.max(delay, Math.min(err.retryAfterMs, this.o.backoffMaxMs));
    this.nextAttemptAt = now + delay;
    const fields = { channel: channel.name, code: errorCode(err), err: messageOf(err), failures: this.failures, retryInMs: delay, queued: queue.depthOf(channel.name) };
    if (this.failures === 1) logger.warn('notification channel unavailable; retrying with backoff', fields);
    else this.o.limited(`retry:${channel.name}`, (suppressed) => logger.warn('notification channel still unavailable', { ...fields, suppressed }));
  }

  private succeeded(now: number, n: number): void {
    if (this.failures > 0) this.o.logger.info('notification channel available again', { channel: this.o.channel.name, failures: this.failures });
    this.failures = 0;
    this.nextAttemptAt = null;
    this.lastError = null;
    this.lastSuccessAt = now;
    this.lastSentAt = now;
    this.lastWasFull = n >= this.o.channel.maxBatch;
  }

  status(): ChannelStatus {
    const name = this.o.channel.name;
    const state: ChannelState = this.inFlight ? 'sending' : this.failures > 0 ? 'retrying' : this.timer !== undefined ? 'waiting' : 'idle';
    return {
      name,
      type: this.o.channel.type,
      state,
      queued: this.o.queue.depthOf(name),
      oldestQueuedAt: this.o.queue.oldestQueuedAt(name),
      delivered: this.delivered,
      refused: this.refused,
      consecutiveFailures: this.failures,
      lastSuccessAt: this.lastSuccessAt,
      nextAttemptAt: this.nextAttemptAt,
      lastError: this.lastError,
    };
  }

  /** Stops scheduling and ends the channel's in-flight work; what was not accepted stays queued. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.o.channel.close().catch((err: unknown) => this.o.logger.warn('notification channel close failed', { channel: this.o.channel.name, err: messageOf(err) }));
    // Closing the channel ends its send; bounded anyway, so a stuck send cannot hold a shutdown
    // past the nucleus's grace time (docs/conventions.md "Lifecycle").
    if (!this.inFlight) return;
    let timer: TimerHandle | undefined;
    const grace = new Promise<void>((resolve) => (timer = this.o.clock.setTimeout(resolve, CLOSE_GRACE_MS)));
    await Promise.race([this.inFlight, grace]);
    this.o.clock.clearTimeout(timer);
    if ((this.inFlight as Promise<void> | undefined) !== undefined) this.o.logger.warn('notification send still running at close; left behind', { channel: this.o.channel.name });
  }
}
