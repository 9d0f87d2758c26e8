/**
 * One sender per exporter: takes sealed batches from the outbox in priority order (class, then age),
 * paces them, sends them, and removes each from the outbox only when the exporter confirmed it
 * (docs/uplink.md "Delivery confirmation").
 *
 * - Concurrency: up to `concurrency` batches in flight; one slot is kept for alarms, so a live alarm
 *   never waits behind a full window of backlog (the drain after an outage keeps live alarms under
 *   1 s: an alarm waits at most for its own send).
 * - Pacing: `buckets` (IoT Core's publish and byte rates); alarms take their tokens in debt.
 * - Failure: the exporter goes offline. Sending data again waits an exponential backoff with
 *   jitter (components/lib/backoff.ts, capped at `backoffMaxMs`); retries go on until the outbox's
 *   age bound drops the data (maxAgeMs, 24 h by default). Noticing that the destination is back does
 *   not wait for that: an exporter with a cheap `probe` is probed every `probeIntervalMs` while
 *   offline, whatever is in flight, and once a probe succeeds after one failed (the destination was
 *   unreachable and is back) the sender is online and drains at once. If probes never failed (the
 *   destination answers but refuses our data), the backoff is waited out. While offline, a new alarm
 *   also triggers an early attempt at most once a second. `lastError` is cleared once online.
 */
import { backoffDelay } from '../lib/backoff';
import type { Clock, TimerHandle } from '../lib/clock';
import type { UplinkExporterStatus } from '../lib/contract';
import { errorCode, errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { classIndex } from './classes';
import type { BatchMeta, Outbox } from './outbox';
import type { TokenBucket } from './pacing';
import { ExportError, PermanentExportError, type Exporter } from './exporters/types';

export interface SenderOptions {
  index: number;
  exporter: Exporter;
  outbox: Outbox;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  concurrency: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** While offline, how often the exporter's probe runs (exporters with a probe). */
  probeIntervalMs?: number;
  buckets?: { publishes: TokenBucket; bytes: TokenBucket };
  random?: () => number;
  /** Called on every confirmed batch (tests and benchmarks observe delivery). */
  onDelivered?: (b: BatchMeta, latencyMs: number) => void;
  onStateChange?: (online: boolean) => void;
}

export class Sender {
  private readonly inFlight = new Map<number, BatchMeta>();
  private online = true;
  private failures = 0;
  private lastSuccessAt: number | null = null;
  private lastError: string | null = null;
  private nextAttemptAt: number | null = null;
  private lastEarlyRetryAt = -Infinity;
  private timer: TimerHandle | undefined;
  private closed = false;
  private probing = false;
  private offlineSince = -Infinity;
  /** A retry came due while sends from before the outage were still in flight: run it once they settle. */
  private retryWhenIdle = false;
  /** Data may be sent again from this time on (backoff after a failed send). */
  private nextDataAt = 0;
  /** The destination was away (the last failed send was not a refusal, or a probe failed since). */
  private unreachable = false;

  constructor(private readonly o: SenderOptions) {}

  status(): UplinkExporterStatus {
    return {
      state: this.online ? 'online' : 'offline',
      lastSuccessAt: this.lastSuccessAt,
      consecutiveFailures: this.failures,
      nextAttemptAt: this.nextAttemptAt,
      lastError: this.lastError,
      backlogBatches: this.o.outbox.pendingFor(this.o.index),
    };
  }

  get isOnline(): boolean {
    return this.online;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** New batches are waiting. `urgent`: an alarm, which may cut a backoff short. */
  kick(urgent = false): void {
    if (this.closed) return;
    if (!this.online) {
      const now = this.o.clock.now();
      if (!urgent || now - this.lastEarlyRetryAt < 1000) return;
      this.lastEarlyRetryAt = now;
      this.o.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.retry();
      return;
    }
    this.pump();
  }

  close(): void {
    this.closed = true;
    this.o.clock.clearTimeout(this.timer);
  }

  private pump(): void {
    if (this.closed || !this.online) return;
    const { outbox, clock, buckets } = this.o;
    while (this.inFlight.size < this.o.concurrency) {
      // The last free slot is for alarms only.
      const alarmsOnly = this.inFlight.size >= this.o.concurrency - 1;
      const [next] = outbox.next(this.o.index, new Set(this.inFlight.keys()), 1, alarmsOnly ? classIndex('alarms') : undefined);
      if (!next) return;
      const now = clock.now();
      if (buckets && next.cls !== 'alarms') {
        const wait = Math.max(buckets.publishes.waitMs(1, now), buckets.bytes.waitMs(next.bytes, now));
        if (wait > 0) {
          if (this.timer === undefined) this.timer = clock.setTimeout(() => ((this.timer = undefined), this.pump()), wait);
          return;
        }
      }
      buckets?.publishes.take(1, now);
      buckets?.bytes.take(next.bytes, now);
      this.dispatch(next);
    }
  }

  private dispatch(meta: BatchMeta): void {
    const batch = this.o.outbox.load(meta);
    if (!batch) return; // evicted meanwhile
    this.inFlight.set(meta.id, meta);
    const started = this.o.clock.now();
    this.o.exporter
      .send({ seq: batch.id, cls: batch.cls, oldestAt: batch.oldestAt, createdAt: batch.createdAt, count: batch.count, body: batch.body })
      .then(
        () => this.settled(meta, started, undefined),
        (err: unknown) => this.settled(meta, started, err),
      );
  }

  private settled(meta: BatchMeta, started: number, err: unknown): void {
    this.inFlight.delete(meta.id);
    if (this.closed) return;
    const now = this.o.clock.now();
    if (err === undefined || err instanceof PermanentExportError) {
      this.o.outbox.confirm(this.o.index, meta);
      if (err instanceof PermanentExportError) {
        this.o.metrics.drop(`${this.o.exporter.name}_${err.code.toLowerCase()}`, meta.count);
        this.o.logger.error('batch cannot go to this exporter; skipped', { exporter: this.o.exporter.name, seq: meta.id, err: err.message });
      } else {
        this.o.metrics.incOut(meta.count);
        this.o.metrics.observeLatency(Math.max(0, now - meta.oldestAt));
        this.o.onDelivered?.(meta, now - started);
      }
      this.succeeded(now);
      this.pump();
      return;
    }
    // Sends already in flight when the exporter went offline do not grow the backoff again; the
    // last of them to settle runs a retry that came due meanwhile (else nothing would schedule one
    // until an alarm arrived: a black-holed network makes sends hang past the first backoff).
    if (!this.online && started <= this.offlineSince) {
      if (this.retryWhenIdle && this.inFlight.size === 0) {
        this.retryWhenIdle = false;
        this.retry();
      }
      return;
    }
    this.failed(err, now);
  }

  /** A confirmed delivery: the backoff starts again from its first step. */
  private succeeded(now: number): void {
    this.lastSuccessAt = now;
    this.failures = 0;
    this.markOnline();
  }

  /** Online again (a delivery, or a probe that says the destination is back). */
  private markOnline(): void {
    this.retryWhenIdle = false;
    this.nextAttemptAt = null;
    this.lastError = null;
    this.unreachable = false;
    this.nextDataAt = 0;
    if (!this.online) {
      this.online = true;
      this.o.logger.info('exporter online', { exporter: this.o.exporter.name });
      this.o.onStateChange?.(true);
    }
  }

  private failed(err: unknown, now: number): void {
    this.failures++;
    this.lastError = `${errorCode(err)}: ${errorMessage(err)}`;
    this.o.metrics.recordError(err);
    const delay = backoffDelay(this.failures, { initialMs: this.o.backoffInitialMs, maxMs: this.o.backoffMaxMs, ...(this.o.random ? { random: this.o.random } : {}) });
    this.nextDataAt = now + delay;
    // Away (no answer, 5xx, offline): the first probe that succeeds ends the outage. Refused: wait the backoff out.
    this.unreachable = !(err instanceof ExportError && err.refused);
    if (this.online) {
      this.online = false;
      this.offlineSince = now;
      this.o.logger.warn('exporter offline; backing off', { exporter: this.o.exporter.name, err: this.lastError, delayMs: delay });
      this.o.onStateChange?.(false);
    }
    this.schedule(now, this.o.exporter.probe ? Math.min(delay, this.probeInterval) : delay);
  }

  private get probeInterval(): number {
    return this.o.probeIntervalMs ?? 5000;
  }

  private schedule(now: number, delay: number): void {
    this.nextAttemptAt = now + delay;
    this.o.clock.clearTimeout(this.timer);
    this.timer = this.o.clock.setTimeout(() => ((this.timer = undefined), this.retry()), delay);
  }

  /** One attempt while offline: the probe if there is one, else the most urgent batch. */
  private retry(): void {
    if (this.closed || this.online || this.probing) return;
    const probe = this.o.exporter.probe;
    if (this.inFlight.size > 0 && !probe) {
      this.retryWhenIdle = true;
      return;
    }
    if (!probe) {
      const [next] = this.o.outbox.next(this.o.index, new Set(), 1);
      if (!next) {
        // Nothing to send: consider the destination usable until something fails again.
        this.succeeded(this.o.clock.now());
        return;
      }
      this.dispatch(next);
      return;
    }
    this.probing = true;
    probe.call(this.o.exporter).then(
      () => {
        this.probing = false;
        if (this.closed || this.online) return;
        const now = this.o.clock.now();
        // Back after being unreachable: drain now. Reachable all along but refusing data: wait out the backoff.
        if (!this.unreachable && now < this.nextDataAt) {
          this.schedule(now, this.nextDataAt - now);
          return;
        }
        // Online, but the backoff step is kept until a delivery is confirmed.
        this.markOnline();
        this.pump();
      },
      (err: unknown) => {
        this.probing = false;
        if (this.closed || this.online) return;
        const now = this.o.clock.now();
        // Probes are cheap: they do not grow the backoff; they only tell that the destination is away.
        this.unreachable = true;
        this.lastError = `${errorCode(err)}: ${errorMessage(err)}`;
        this.schedule(now, this.probeInterval);
      },
    );
  }
}
