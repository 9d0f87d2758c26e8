/**
 * A link: one connection (serial bus or TCP endpoint) and the requests that use it.
 *
 * - One request at a time: Modbus over Serial Line v1.02 §2.1 allows only one outstanding request
 *   on a bus (the master waits for the answer or the timeout before the next). TCP devices each get
 *   their own link, so they are polled in parallel.
 * - Connects on demand. A failed connect backs off exponentially with jitter (components/lib/backoff)
 *   up to `reconnectMaxMs`; requests during the back-off fail at once without I/O.
 * - A timeout or an I/O error on TCP drops the connection (see transport.ts); the next request
 *   reconnects.
 * - The queue is bounded: pollers never queue more than one cycle per device and writes are capped
 *   per device, and the hard cap here rejects anything beyond.
 * - On a serial bus, after a timeout or a garbled answer from a unit, that unit is not asked again
 *   for a drain period (twice the request's timeout, at most RTU_DRAIN_MAX_MS: a late answer on a
 *   busy gateway or a slow bus can come well after the timeout); requests for other units
 *   go first. The transport discards what arrived before each request. RTU frames carry no
 *   transaction id (Modbus over Serial Line v1.02 §2.5.1), so a late answer arriving while the next
 *   request of the same unit, function code and length is awaited would otherwise be taken for its
 *   answer; another unit's late answer is told apart by its address (and its CRC).
 */
import { backoffDelay } from '../lib/backoff';
import type { Clock } from '../lib/clock';
import { TransientError } from '../lib/errors';
import type { ResolvedConnection } from './config';
import { ModbusErrorCode, ModbusException, type Transport, type TransportFactory } from './transport';

/** Upper bound of the quiet period after a failed request on a serial bus. */
export const RTU_DRAIN_MAX_MS = 1000;

export type LinkState = 'disconnected' | 'connecting' | 'connected' | 'closed';

export interface LinkOptions {
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  /** Hard cap on waiting requests. */
  maxQueue?: number;
  random?: () => number;
}

interface Job {
  run: (t: Transport) => Promise<unknown>;
  timeoutMs: number;
  /** The unit addressed (serial drain); undefined: no unit (never held back). */
  unit: number | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export class Link {
  private transport: Transport | undefined;
  private readonly queue: Job[] = [];
  private busy = false;
  private failures = 0;
  private nextAttemptAt = 0;
  /** Serial bus: unit -> no request to it before this time (drain after a timeout or garbled answer). */
  private readonly quietUntil = new Map<number, number>();
  private quietTimer: unknown;
  private _state: LinkState = 'disconnected';
  private readonly maxQueue: number;
  /** Counters for metrics and the benchmark. */
  readonly stats = { requests: 0, connects: 0, connectFailures: 0, drops: 0, busyMs: 0 };

  constructor(
    readonly key: string,
    readonly conn: ResolvedConnection,
    private readonly factory: TransportFactory,
    private readonly clock: Clock,
    private readonly opts: LinkOptions,
  ) {
    this.maxQueue = opts.maxQueue ?? 1024;
  }

  get state(): LinkState {
    return this._state;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Run `fn` with the transport when it is this request's turn; `timeoutMs` bounds the whole call. */
  request<T>(fn: (t: Transport) => Promise<T>, timeoutMs: number, unit?: number): Promise<T> {
    if (this._state === 'closed') return Promise.reject(new TransientError(ModbusErrorCode.CLOSED, `${this.key}: link closed`));
    if (this.queue.length >= this.maxQueue) return Promise.reject(new TransientError(ModbusErrorCode.LINK_BUSY, `${this.key}: ${this.queue.length} requests waiting`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: fn, timeoutMs, unit, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    if (this._state === 'closed') return;
    this._state = 'closed';
    this.clock.clearTimeout(this.quietTimer);
    for (const j of this.queue.splice(0)) j.reject(new TransientError(ModbusErrorCode.CLOSED, `${this.key}: link closed`));
    const t = this.transport;
    this.transport = undefined;
    await t?.close();
  }

  private pump(): void {
    if (this.busy || this.queue.length === 0) return;
    const now = this.clock.now();
    for (const [unit, until] of this.quietUntil) if (until <= now) this.quietUntil.delete(unit);
    // The first waiting request whose unit is not draining (FIFO otherwise).
    const i = this.queue.findIndex((j) => j.unit === undefined || !this.quietUntil.has(j.unit));
    if (i === -1) {
      const next = Math.min(...this.queue.map((j) => this.quietUntil.get(j.unit as number) ?? now));
      this.quietTimer ??= this.clock.setTimeout(() => {
        this.quietTimer = undefined;
        this.pump();
      }, Math.max(1, next - now));
      return;
    }
    const [job] = this.queue.splice(i, 1);
    if (!job) return;
    this.busy = true;
    const started = this.clock.now();
    this.execute(job)
      .then(job.resolve, job.reject)
      .finally(() => {
        this.stats.busyMs += this.clock.now() - started;
        this.busy = false;
        this.pump();
      });
  }

  private async execute(job: Job): Promise<unknown> {
    const t = await this.connected();
    this.stats.requests += 1;
    let timer: unknown;
    const guard = new Promise<never>((_resolve, reject) => {
      // The library has its own timeout; this guard (on the injected clock) makes sure a request
      // that never settles, e.g. on a half-open socket, still frees the link.
      timer = this.clock.setTimeout(() => reject(new TransientError(ModbusErrorCode.TIMEOUT, `${this.key}: no answer in ${job.timeoutMs} ms`)), job.timeoutMs + 50);
    });
    try {
      return await Promise.race([job.run(t), guard]);
    } catch (err) {
      if (!(err instanceof ModbusException)) {
        if (this.conn.type === 'tcp') await this.drop();
        else if (job.unit !== undefined) this.quietUntil.set(job.unit, this.clock.now() + Math.min(2 * job.timeoutMs, RTU_DRAIN_MAX_MS));
      }
      throw err;
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  private async connected(): Promise<Transport> {
    if (this.transport?.isOpen) return this.transport;
    if (this.transport) await this.drop();
    const now = this.clock.now();
    if (now < this.nextAttemptAt) {
      throw new TransientError(ModbusErrorCode.BACKOFF, `${this.key}: reconnecting in ${this.nextAttemptAt - now} ms`);
    }
    this._state = 'connecting';
    const t = this.factory(this.conn);
    try {
      await t.open();
    } catch (err) {
      this.failures += 1;
      this.stats.connectFailures += 1;
      this.nextAttemptAt = this.clock.now() + backoffDelay(this.failures, { initialMs: this.opts.reconnectInitialMs, maxMs: this.opts.reconnectMaxMs, ...(this.opts.random ? { random: this.opts.random } : {}) });
      if (!this.isClosed()) this._state = 'disconnected';
      await t.close().catch(() => undefined);
      throw err;
    }
    if (this.isClosed()) {
      await t.close();
      throw new TransientError(ModbusErrorCode.CLOSED, `${this.key}: link closed`);
    }
    this.failures = 0;
    this.nextAttemptAt = 0;
    this.stats.connects += 1;
    this.transport = t;
    this._state = 'connected';
    t.onClose(() => {
      if (this.transport === t) {
        this.transport = undefined;
        this.stats.drops += 1;
        if (this._state !== 'closed') this._state = 'disconnected';
      }
    });
    return t;
  }

  private isClosed(): boolean {
    return this._state === 'closed';
  }

  private async drop(): Promise<void> {
    const t = this.transport;
    this.transport = undefined;
    if (this._state !== 'closed') this._state = 'disconnected';
    if (t) {
      this.stats.drops += 1;
      await t.close().catch(() => undefined);
    }
  }
}
