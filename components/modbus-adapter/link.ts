/**
 * A link: one serial bus, or one TCP endpoint (host:port), and the requests of the devices on it.
 *
 * - Serial: one request at a time. Modbus over Serial Line v1.02 §2.1 allows only one outstanding
 *   request on a bus (the master waits for the answer or the timeout before the next).
 * - TCP: the devices at one endpoint (typically a Modbus TCP-to-RTU gateway with several unit ids
 *   behind it) share up to `maxConnections` connections (default 1), one request outstanding on
 *   each: a gateway forwards to one serial line and many accept only a few connections, so by
 *   default requests are serialised as on the bus behind it. A second connection is opened only
 *   when the open ones are busy and a request waits. Requests are taken in order (FIFO, but see
 *   the recovery pause below) by whichever connection is free.
 * - Connects on demand. A failed connect backs off exponentially with jitter (components/lib/backoff)
 *   up to `reconnectMaxMs`, for the whole link; requests during the back-off fail at once without I/O.
 * - A timeout or an I/O error on TCP drops that connection (see transport.ts); the next request
 *   on it reconnects.
 * - The queue is bounded: pollers never queue more than one cycle per device and writes are capped
 *   per device, and the hard cap here rejects anything beyond.
 * - Recovery pause: after a timeout or a garbled answer from a unit, that unit is not asked again
 *   for twice the request's timeout, at most RTU_DRAIN_MAX_MS; requests for other units go first.
 *   On a serial bus, a late answer on a busy bus can come well after the timeout: the pause lets it
 *   drain, and the transport discards what arrived before each request. RTU frames carry no
 *   transaction id (Modbus over Serial Line v1.02 §2.5.1), so a late answer arriving while the next
 *   request of the same unit, function code and length is awaited would otherwise be taken for its
 *   answer; another unit's late answer is told apart by its address (and its CRC). Behind a TCP
 *   gateway the same holds on the gateway's serial side (the gateway is still waiting for, or
 *   draining, the silent unit), and a unit that does not answer would otherwise hold the shared
 *   connection for a timeout on every poll tick.
 */
import { backoffDelay } from '../lib/backoff';
import type { Clock } from '../lib/clock';
import { TransientError } from '../lib/errors';
import type { ResolvedConnection } from './config';
import { ModbusErrorCode, ModbusException, type Transport, type TransportFactory } from './transport';

/** Upper bound of the recovery pause after a failed request to a unit (serial bus or TCP endpoint). */
export const RTU_DRAIN_MAX_MS = 1000;

export type LinkState = 'disconnected' | 'connecting' | 'connected' | 'closed';

export interface LinkOptions {
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  /** TCP: connections to the endpoint at most (requests outstanding at once); serial: always 1. */
  maxConnections?: number;
  /** Hard cap on waiting requests. */
  maxQueue?: number;
  random?: () => number;
}

interface Job {
  run: (t: Transport) => Promise<unknown>;
  timeoutMs: number;
  /** The unit addressed (recovery pause); undefined: no unit (never held back). */
  unit: number | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** One connection of the link and whether a request is using it. */
interface Lane {
  transport: Transport | undefined;
  busy: boolean;
  connecting: boolean;
  /** Had a connection before (the next connect is a reconnect). */
  wasConnected: boolean;
}

export class Link {
  private readonly lanes: Lane[];
  private readonly queue: Job[] = [];
  private failures = 0;
  private nextAttemptAt = 0;
  /** unit -> no request to it before this time (recovery pause after a timeout or garbled answer). */
  private readonly quietUntil = new Map<number, number>();
  private quietTimer: unknown;
  private closed = false;
  private readonly maxQueue: number;
  /**
   * Counters for metrics, the benchmark and tests. `maxInFlight`: most requests outstanding at once;
   * `reconnects`: connects that replaced a connection that was lost or dropped (devices read their
   * static SunSpec models again after one: the device behind it may have restarted or been swapped).
   */
  readonly stats = { requests: 0, connects: 0, reconnects: 0, connectFailures: 0, drops: 0, busyMs: 0, maxInFlight: 0 };

  constructor(
    readonly key: string,
    readonly conn: ResolvedConnection,
    private readonly factory: TransportFactory,
    private readonly clock: Clock,
    private readonly opts: LinkOptions,
  ) {
    this.maxQueue = opts.maxQueue ?? 1024;
    const n = conn.type === 'rtu' ? 1 : Math.max(1, Math.floor(opts.maxConnections ?? 1));
    this.lanes = Array.from({ length: n }, () => ({ transport: undefined, busy: false, connecting: false, wasConnected: false }));
  }

  get state(): LinkState {
    if (this.closed) return 'closed';
    if (this.lanes.some((l) => l.transport?.isOpen)) return 'connected';
    return this.lanes.some((l) => l.connecting) ? 'connecting' : 'disconnected';
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Connections this link may open. */
  get maxConnections(): number {
    return this.lanes.length;
  }

  /** Run `fn` with a transport when it is this request's turn; `timeoutMs` bounds the whole call. */
  request<T>(fn: (t: Transport) => Promise<T>, timeoutMs: number, unit?: number): Promise<T> {
    if (this.closed) return Promise.reject(new TransientError(ModbusErrorCode.CLOSED, `${this.key}: link closed`));
    if (this.queue.length >= this.maxQueue) return Promise.reject(new TransientError(ModbusErrorCode.LINK_BUSY, `${this.key}: ${this.queue.length} requests waiting`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: fn, timeoutMs, unit, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.quietTimer);
    for (const j of this.queue.splice(0)) j.reject(new TransientError(ModbusErrorCode.CLOSED, `${this.key}: link closed`));
    await Promise.all(
      this.lanes.map(async (lane) => {
        const t = lane.transport;
        lane.transport = undefined;
        await t?.close();
      }),
    );
  }

  /** A free connection: an open one first, so a second is opened only when the first is busy. */
  private idleLane(): Lane | undefined {
    return this.lanes.find((l) => !l.busy && l.transport?.isOpen) ?? this.lanes.find((l) => !l.busy);
  }

  private pump(): void {
    while (!this.closed && this.queue.length > 0) {
      const lane = this.idleLane();
      if (!lane) return;
      const now = this.clock.now();
      for (const [unit, until] of this.quietUntil) if (until <= now) this.quietUntil.delete(unit);
      // The first waiting request whose unit is not in its pause (FIFO otherwise).
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
      lane.busy = true;
      this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.lanes.filter((l) => l.busy).length);
      const started = now;
      this.execute(lane, job)
        .then(job.resolve, job.reject)
        .finally(() => {
          this.stats.busyMs += this.clock.now() - started;
          lane.busy = false;
          this.pump();
        });
    }
  }

  private async execute(lane: Lane, job: Job): Promise<unknown> {
    const t = await this.connected(lane);
    this.stats.requests += 1;
    let timer: unknown;
    const guard = new Promise<never>((_resolve, reject) => {
      // The library has its own timeout; this guard (on the injected clock) makes sure a request
      // that never settles, e.g. on a half-open socket, still frees the connection.
      timer = this.clock.setTimeout(() => reject(new TransientError(ModbusErrorCode.TIMEOUT, `${this.key}: no answer in ${job.timeoutMs} ms`)), job.timeoutMs + 50);
    });
    try {
      return await Promise.race([job.run(t), guard]);
    } catch (err) {
      if (!(err instanceof ModbusException)) {
        if (job.unit !== undefined) this.quietUntil.set(job.unit, this.clock.now() + Math.min(2 * job.timeoutMs, RTU_DRAIN_MAX_MS));
        if (this.conn.type === 'tcp') await this.drop(lane);
      }
      throw err;
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  private async connected(lane: Lane): Promise<Transport> {
    if (lane.transport?.isOpen) return lane.transport;
    if (lane.transport) await this.drop(lane);
    const now = this.clock.now();
    if (now < this.nextAttemptAt) {
      throw new TransientError(ModbusErrorCode.BACKOFF, `${this.key}: reconnecting in ${this.nextAttemptAt - now} ms`);
    }
    lane.connecting = true;
    const t = this.factory(this.conn);
    try {
      await t.open();
    } catch (err) {
      this.failures += 1;
      this.stats.connectFailures += 1;
      this.nextAttemptAt = this.clock.now() + backoffDelay(this.failures, { initialMs: this.opts.reconnectInitialMs, maxMs: this.opts.reconnectMaxMs, ...(this.opts.random ? { random: this.opts.random } : {}) });
      await t.close().catch(() => undefined);
      throw err;
    } finally {
      lane.connecting = false;
    }
    if (this.closed) {
      await t.close();
      throw new TransientError(ModbusErrorCode.CLOSED, `${this.key}: link closed`);
    }
    this.failures = 0;
    this.nextAttemptAt = 0;
    this.stats.connects += 1;
    if (lane.wasConnected) this.stats.reconnects += 1;
    lane.wasConnected = true;
    lane.transport = t;
    t.onClose(() => {
      if (lane.transport === t) {
        lane.transport = undefined;
        this.stats.drops += 1;
      }
    });
    return t;
  }

  private async drop(lane: Lane): Promise<void> {
    const t = lane.transport;
    lane.transport = undefined;
    if (t) {
      this.stats.drops += 1;
      await t.close().catch(() => undefined);
    }
  }
}
