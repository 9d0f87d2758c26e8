/**
 * One device's poll loop, status and writes.
 *
 * - Polls are due at fixed slots against the clock: the first slot (start, plus the device's
 *   offset in the interval, see adapter.ts) + k x `pollIntervalMs`. Each timer is set for the next
 *   slot, computed from the previous slot and never from when the timer fired, so a timer that
 *   fires late (Node's fire a millisecond or two late, and setInterval reschedules from the late
 *   firing: about 1002 ms a cycle, 0.2 % of polls lost) delays that poll and not the ones after it.
 * - A slot that finds the previous cycle still running (the device, or its serial bus, is slower
 *   than the poll rate) is counted as an overrun and skipped; so is a slot that passed while the
 *   timer could not fire (a busy event loop). Nothing queues, so memory stays flat however slow
 *   the device is, and the next poll is on the next slot.
 * - A step of the wall clock (NTP) by more than an interval back, or by more than
 *   max(10 intervals, 10 s) forward, re-anchors the slots at the same phase in the interval:
 *   polling neither stalls for the length of a backward step nor counts a forward one as
 *   thousands of overruns.
 * - The sample time is taken when the cycle's first read is actually sent on the link (after any
 *   wait for the serial bus), not when the timer fired.
 * - Communication status: `online` after a complete poll; `degraded` after a partial poll (an
 *   exception response for some registers) or fewer than `offlineAfterFailures` failed polls in a
 *   row; `offline` after that many, or before the first success. Published on every change.
 * - Writes wait in a small bounded queue and run between polls on the same link.
 */
import type { Clock, TimerHandle } from '../lib/clock';
import type { ControlResultData, DeviceState, Point } from '../lib/contract';
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
  /** Poll slots skipped while an IV scan held the device (not overruns: the device was busy by command). */
  scanSkips: number;
}

export interface DeviceOptions {
  assetId: string;
  unitId: number;
  pollIntervalMs: number;
  timeoutMs: number;
  offlineAfterFailures: number;
  rediscoverIntervalMs: number;
  maxPendingWrites: number;
  /**
   * Static SunSpec models' last values go out again with the first poll this long after they last
   * did (the adapter's statusHeartbeatMs, read when needed so a change applies at once); 0: only
   * with the poll that read them.
   */
  staticRepeatMs?: () => number;
}

/** `ran`: the device was (or may have been) written; false when refused or expired before any write. */
export type WriteOutcome = { status: 'succeeded' | 'failed' | 'rejected' | 'expired'; message: string; ran: boolean; data?: ControlResultData };

interface PendingWrite {
  action: string;
  params: WriteParams;
  /** Not started after this time (ms since epoch). */
  deadline: number;
  queuedAt: number;
  resolve: (o: WriteOutcome) => void;
}

/** Lateness beyond which a slot timer is taken for a step of the wall clock, not a busy process. */
export const CLOCK_STEP_MIN_MS = 10_000;

export class Device {
  private timer: TimerHandle | undefined;
  /** When the next poll is due (ms since epoch, on the injected clock). */
  private nextSlot = 0;
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
  /** The link's reconnect count when this device last looked; a change means a new connection. */
  private seenReconnects = 0;
  /** When the static models' values last went out (ms; -Infinity: never). */
  private staticSentAt = Number.NEGATIVE_INFINITY;
  private discoveryMessage = '';
  private lastError: string | null = null;
  private cycleTotalMs = 0;
  private readonly writes: PendingWrite[] = [];
  private writing = false;
  /** The write being executed is an IV scan (seconds long): poll slots meanwhile are skipped, not overruns. */
  private scanning = false;
  private current: Promise<void> = Promise.resolve();
  readonly counters = { polls: 0, failures: 0, partial: 0, overruns: 0, writes: 0, scanSkips: 0, lastCycleMs: null as number | null };

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

  /** Starts polling: the first poll `offsetMs` from now, then every `pollIntervalMs` on that phase. */
  start(offsetMs = 0): void {
    this.nextSlot = this.clock.now() + Math.max(0, offsetMs);
    if (offsetMs > 0) this.arm();
    else this.onSlot();
  }

  private arm(): void {
    this.timer = this.clock.setTimeout(() => this.onSlot(), Math.max(0, this.nextSlot - this.clock.now()));
  }

  /** The timer of slot `nextSlot` fired: poll (or count the overrun), and set the next slot's timer. */
  private onSlot(): void {
    if (this.closed) return;
    const now = this.clock.now();
    const slot = this.nextSlot;
    const interval = this.opts.pollIntervalMs;
    let next = slot + interval;
    if (now < slot - interval || now - slot > Math.max(10 * interval, CLOCK_STEP_MIN_MS)) {
      // The wall clock stepped (timers run on a monotonic clock): keep the phase, from now.
      next = now + ((((slot - now) % interval) + interval) % interval || interval);
      this.log.warn('clock step: poll slots re-anchored', { assetId: this.opts.assetId, stepMs: now - slot });
    } else if (next <= now) {
      const missed = Math.floor((now - slot) / interval);
      next = slot + (missed + 1) * interval;
      this.counters.overruns += missed;
      for (let i = 0; i < missed; i++) this.hooks.overrun();
    }
    this.nextSlot = next;
    this.arm();
    this.tick();
  }

  /** Stops polling; waits for a cycle in flight. Pending and later writes are answered as failed, with `reason`. */
  async close(reason = 'adapter stopping'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.clock.clearTimeout(this.timer);
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
      scanSkips: this.counters.scanSkips,
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
      wait: (ms) => new Promise<void>((resolve) => this.clock.setTimeout(resolve, ms)),
      now: () => this.clock.now(),
    };
  }

  private tick(): void {
    if (this.closed) return;
    if (this.running) {
      // Only a timer tick is an overrun; a write arriving mid-cycle just waits for the cycle's end.
      if (this.scanning) {
        this.counters.scanSkips += 1;
        return;
      }
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
      this.scanning = w.action === 'iv_scan';
      try {
        if (!this.profile.ready) await this.discover();
        const done = await this.profile.write(counting, w.action, w.params);
        if (typeof done === 'string') w.resolve({ status: 'succeeded', message: done, ran: true });
        else w.resolve({ status: 'succeeded', message: done.message, ran: true, ...(done.data ? { data: done.data } : {}) });
      } catch (err) {
        if (err instanceof WriteRefused) w.resolve({ status: 'rejected', message: err.message, ran });
        else {
          this.hooks.error(err);
          w.resolve({ status: 'failed', message: errorMessage(err), ran });
        }
      } finally {
        this.scanning = false;
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
    let discovered = false;
    try {
      const now = this.clock.now();
      if (this.profile.kind === 'sunspec' && this.profile.ready && now - this.discoveredAt >= this.opts.rediscoverIntervalMs) this.profile.reset();
      if (!this.profile.ready) {
        discovered = true;
        await this.discover();
      }
      const repeat = this.opts.staticRepeatMs?.() ?? 0;
      const result = await this.profile.poll(this.io((t) => (sampleAt ??= t)), { withStatic: repeat > 0 && now - this.staticSentAt >= repeat });
      if (result.static) this.staticSentAt = now;
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
      // A new connection since the last look: the device behind it may have restarted or been
      // swapped, so its static models are read again (not after a discovery, which just read them).
      const reconnects = this.link.stats.reconnects;
      if (reconnects !== this.seenReconnects) {
        this.seenReconnects = reconnects;
        if (!discovered) this.profile.refreshStatic?.();
      }
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
