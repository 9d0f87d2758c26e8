/**
 * One device's poll loop, status and writes.
 *
 * - A timer fires every `pollIntervalMs`. If the previous cycle is still running (the device, or
 *   its serial bus, is slower than the poll rate) the tick is counted as an overrun and skipped:
 *   nothing queues, so memory stays flat however slow the device is.
 * - The sample time is taken when the cycle's first read is actually sent on the link (after any
 *   wait for the serial bus), not when the timer fired.
 * - Communication status: `online` after a complete poll; `degraded` after a partial poll (an
 *   exception response for some registers) or fewer than `offlineAfterFailures` failed polls in a
 *   row; `offline` after that many, or before the first success. Published on every change.
 * - Writes wait in a small bounded queue and run between polls on the same link.
 */
import type { Clock, TimerHandle } from '../lib/clock';
import type { DeviceState, Point } from '../lib/contract';
import { errorCode, errorMessage, TransientError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Link } from './link';
import type { DeviceIo, Profile, WriteParams } from './profile';
import { WriteRefused } from './profile';
import { ModbusErrorCode } from './transport';

export interface DeviceStatusUpdate {
  state: DeviceState;
  lastSeen: number | null;
  consecutiveFailures: number;
  message: string;
  models: number[];
}

export interface DeviceHooks {
  telemetry(ts: number, points: Record<string, Point>): void;
  status(s: DeviceStatusUpdate): void;
  error(err: unknown): void;
  cycle(ms: number): void;
  overrun(): void;
}

export interface DeviceStats {
  assetId: string;
  state: DeviceState;
  polls: number;
  failures: number;
  /** Polls where part of the device answered with exceptions (state degraded). */
  partial: number;
  overruns: number;
  consecutiveFailures: number;
  lastCycleMs: number | null;
  avgCycleMs: number | null;
  lastError: string | null;
  writes: number;
}

export interface DeviceOptions {
  assetId: string;
  unitId: number;
  pollIntervalMs: number;
  timeoutMs: number;
  offlineAfterFailures: number;
  rediscoverIntervalMs: number;
  maxPendingWrites: number;
}

/** `ran`: the device was (or may have been) written; false when refused or expired before any write. */
export type WriteOutcome = { status: 'succeeded' | 'failed' | 'rejected' | 'expired'; message: string; ran: boolean };

interface PendingWrite {
  action: string;
  params: WriteParams;
  /** Not started after this time (ms since epoch). */
  deadline: number;
  queuedAt: number;
  resolve: (o: WriteOutcome) => void;
}

export class Device {
  private timer: TimerHandle | undefined;
  private running = false;
  private closed = false;
  private closeReason = 'adapter stopping';
  private state: DeviceState = 'offline';
  private published: string | undefined;
  /** Message of the last poll's status (what a heartbeat repeats). */
  private message = '';
  private lastSeen: number | null = null;
  private consecutiveFailures = 0;
  private discoveredAt = 0;
  private discoveryMessage = '';
  private lastError: string | null = null;
  private cycleTotalMs = 0;
  private readonly writes: PendingWrite[] = [];
  private writing = false;
  private current: Promise<void> = Promise.resolve();
  readonly counters = { polls: 0, failures: 0, partial: 0, overruns: 0, writes: 0, lastCycleMs: null as number | null };

  constructor(
    private readonly opts: DeviceOptions,
    private readonly link: Link,
    private readonly profile: Profile,
    private readonly clock: Clock,
    private readonly hooks: DeviceHooks,
    private readonly log: Logger,
  ) {}

  get assetId(): string {
    return this.opts.assetId;
  }

  start(): void {
    this.tick();
    this.timer = this.clock.setInterval(() => this.tick(), this.opts.pollIntervalMs);
  }

  /** Stops polling; waits for a cycle in flight. Pending and later writes are answered as failed, with `reason`. */
  async close(reason = 'adapter stopping'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.clock.clearInterval(this.timer);
    for (const w of this.writes.splice(0)) w.resolve({ status: 'failed', message: reason, ran: false });
    await this.current.catch(() => undefined);
  }

  stats(): DeviceStats {
    return {
      assetId: this.opts.assetId,
      state: this.state,
      polls: this.counters.polls,
      failures: this.counters.failures,
      partial: this.counters.partial,
      overruns: this.counters.overruns,
      consecutiveFailures: this.consecutiveFailures,
      lastCycleMs: this.counters.lastCycleMs,
      avgCycleMs: this.counters.polls + this.counters.failures > 0 ? this.cycleTotalMs / (this.counters.polls + this.counters.failures) : null,
      lastError: this.lastError,
      writes: this.counters.writes,
    };
  }

  /**
   * Queue a write; resolves with its outcome (never rejects). A write still waiting for the device
   * at `deadline` (behind a poll or other writes) is not executed: `expired`.
   */
  write(action: string, params: WriteParams, deadline = Number.POSITIVE_INFINITY): Promise<WriteOutcome> {
    if (this.closed) return Promise.resolve({ status: 'failed', message: this.closeReason, ran: false });
    if (this.writes.length >= this.opts.maxPendingWrites) {
      return Promise.resolve({ status: 'rejected', message: `${this.writes.length} writes already waiting for ${this.opts.assetId}`, ran: false });
    }
    return new Promise((resolve) => {
      this.writes.push({ action, params, deadline, queuedAt: this.clock.now(), resolve });
      this.tick();
    });
  }

  /** An I/O handle for one cycle; records when the first read actually went out. */
  private io(onFirst?: (t: number) => void): DeviceIo {
    const { unitId, timeoutMs } = this.opts;
    let first = true;
    const mark = (): void => {
      if (first) {
        first = false;
        onFirst?.(this.clock.now());
      }
    };
    return {
      readRegisters: (fc, address, count) => this.link.request((t) => (mark(), t.readRegisters(unitId, fc, address, count, timeoutMs)), timeoutMs, unitId),
      readBits: (fc, address, count) => this.link.request((t) => (mark(), t.readBits(unitId, fc, address, count, timeoutMs)), timeoutMs, unitId),
      writeRegisters: (address, values) => this.link.request((t) => t.writeRegisters(unitId, address, values, timeoutMs), timeoutMs, unitId),
      writeCoil: (address, value) => this.link.request((t) => t.writeCoil(unitId, address, value, timeoutMs), timeoutMs, unitId),
    };
  }

  private tick(): void {
    if (this.closed) return;
    if (this.running) {
      // Only a timer tick is an overrun; a write arriving mid-cycle just waits for the cycle's end.
      if (this.writes.length === 0 || this.writing) {
        this.counters.overruns += 1;
        this.hooks.overrun();
      }
      return;
    }
    this.running = true;
    this.current = this.runOnce().finally(() => {
      this.running = false;
      if (this.writes.length > 0 && !this.closed) this.tick();
    });
  }

  private async runOnce(): Promise<void> {
    if (this.writes.length > 0) {
      this.writing = true;
      try {
        await this.drainWrites();
      } finally {
        this.writing = false;
      }
      return;
    }
    await this.cycle();
  }

  private async drainWrites(): Promise<void> {
    for (let w = this.writes.shift(); w; w = this.writes.shift()) {
      const now = this.clock.now();
      if (now > w.deadline) {
        w.resolve({ status: 'expired', message: `expired after waiting ${now - w.queuedAt} ms for the device; not executed`, ran: false });
        continue;
      }
      this.counters.writes += 1;
      let ran = false;
      const io = this.io();
      const counting: DeviceIo = {
        ...io,
        writeRegisters: (a, v) => ((ran = true), io.writeRegisters(a, v)),
        writeCoil: (a, v) => ((ran = true), io.writeCoil(a, v)),
      };
      try {
        if (!this.profile.ready) await this.discover();
        const message = await this.profile.write(counting, w.action, w.params);
        w.resolve({ status: 'succeeded', message, ran: true });
      } catch (err) {
        if (err instanceof WriteRefused) w.resolve({ status: 'rejected', message: err.message, ran });
        else {
          this.hooks.error(err);
          w.resolve({ status: 'failed', message: errorMessage(err), ran });
        }
      }
    }
  }

  private async discover(): Promise<void> {
    this.discoveredAt = this.clock.now();
    const msg = await this.profile.prepare(this.io());
    if (msg) {
      this.discoveryMessage = msg;
      this.log.info('device discovered', { assetId: this.opts.assetId, detail: msg });
    }
  }

  private async cycle(): Promise<void> {
    const started = this.clock.now();
    let sampleAt: number | undefined;
    try {
      const now = this.clock.now();
      if (this.profile.kind === 'sunspec' && this.profile.ready && now - this.discoveredAt >= this.opts.rediscoverIntervalMs) this.profile.reset();
      if (!this.profile.ready) await this.discover();
      const result = await this.profile.poll(this.io((t) => (sampleAt ??= t)));
      const ts = sampleAt ?? started;
      // Every read answered with an exception (e.g. 4 SERVER DEVICE FAILURE on all of them): the
      // device is reachable but serves nothing, which is a failed poll, not a partial one.
      const usable = Object.values(result.points).some((p) => p.q !== 'bad');
      if (result.problems.length > 0 && !usable) throw new TransientError(ModbusErrorCode.NO_DATA, `no readable data: ${result.problems.join('; ')}`);
      this.counters.polls += 1;
      this.lastSeen = this.clock.now();
      this.consecutiveFailures = 0;
      if (Object.keys(result.points).length > 0) this.hooks.telemetry(ts, result.points);
      if (result.problems.length > 0) {
        this.lastError = result.problems.join('; ');
        this.counters.partial += 1;
        this.hooks.error(new TransientError(ModbusErrorCode.PARTIAL, this.lastError));
        this.setState('degraded', `partial poll: ${this.lastError}`);
      } else this.setState('online', this.discoveryMessage || 'polling');
    } catch (err) {
      this.counters.failures += 1;
      this.consecutiveFailures += 1;
      this.lastError = `${errorCode(err)}: ${errorMessage(err)}`;
      this.hooks.error(err);
      // A device that stopped answering may come back re-configured: walk its models again.
      if (this.consecutiveFailures >= this.opts.offlineAfterFailures) this.profile.reset();
      const state: DeviceState = this.lastSeen !== null && this.consecutiveFailures < this.opts.offlineAfterFailures ? 'degraded' : 'offline';
      this.setState(state, this.lastError);
      this.log.debug('poll failed', { assetId: this.opts.assetId, err: this.lastError, consecutiveFailures: this.consecutiveFailures });
    } finally {
      const ms = this.clock.now() - started;
      this.counters.lastCycleMs = ms;
      this.cycleTotalMs += ms;
      this.hooks.cycle(ms);
    }
  }

  /** The device's status now (for the heartbeat); undefined until its first poll ended. */
  currentStatus(): DeviceStatusUpdate | undefined {
    if (this.published === undefined) return undefined;
    return { state: this.state, lastSeen: this.lastSeen, consecutiveFailures: this.consecutiveFailures, message: this.message.slice(0, 500), models: this.profile.models() };
  }

  private setState(state: DeviceState, message: string): void {
    const models = this.profile.models();
    // Publish on a change of state or of the discovered models, not on every poll.
    const key = `${state}|${models.join(',')}`;
    this.state = state;
    this.message = message;
    if (key === this.published) return;
    this.published = key;
    this.log.info('device status', { assetId: this.opts.assetId, state, message });
    this.hooks.status({ state, lastSeen: this.lastSeen, consecutiveFailures: this.consecutiveFailures, message: message.slice(0, 500), models });
  }
}
