/**
 * The IPC bus: ONE long-lived Greengrass IPC connection per component (docs/conventions.md
 * "Lifecycle"), typed publish/subscribe over it, and the thin wrappers the lifecycle needs.
 *
 * Connection loss: on the client's `disconnection` event (or a call that fails or hangs because the
 * connection is gone), the bus drops the client, waits an exponential backoff with jitter, makes a
 * FRESH client (the SDK's `connect()` may be called once per client), connects, re-activates every
 * streaming operation it holds (topic subscriptions, configuration and component-update
 * subscriptions) and flushes what was published meanwhile. Publishes while disconnected wait in a
 * bounded queue; on overflow the oldest is dropped and counted (`dropped.queue_overflow`).
 * Alarm transitions and control commands and results wait in a queue of their own, sent first and
 * never evicted by telemetry; only if that queue itself overflows (a nucleus gone for a long time)
 * is its oldest dropped, counted (`dropped.alarm_queue_overflow`), logged as an error and counted
 * in `criticalDropped`, which the alarm journal turns into an alarm. Dropped alarms are not lost:
 * the source's journal replays them on request (components/lib/alarm-journal.ts).
 * Delivery is at-least-once across a reconnect: a publish in flight when the link dropped is sent
 * again, so consumers de-duplicate (telemetry carries `seq`).
 *
 * The JS client (aws-iot-device-sdk-v2 1.28, eventstream_rpc) has no request timeouts: a call whose
 * response never comes hangs for ever. So every call here has one, and a timeout is treated as a
 * lost connection.
 */
import { backoffDelay } from './backoff';
import { BoundedQueue } from './bounded-queue';
import { dispatchMessage, safely, type DispatchDeps, type MessageHandler } from './bus-dispatch';
import type { Bus, ComponentUpdateEvent, PublishOutcome, SecretValue, Subscription, ValidationEvent } from './bus-types';
import type { Clock, TimerHandle } from './clock';
import { parseTopic, type ConnectionState, type IotTopic, type Topic, type TopicFilter } from './contract';
import { ErrorCode, FatalError, InputError, TransientError, errorMessage } from './errors';
import { classifyIpcError, isConnectionError, type IpcClientFactory, type IpcClientLike, type IpcPayload, type ReceiveMode, type ReportedState, type StreamLike, type SubscriptionMessageLike } from './ipc';
import { createLogLimiter, type LimitedLog } from './log-limit';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

export type { Bus, ComponentUpdateEvent, MessageHandler, PublishOutcome, SecretValue, Subscription, ValidationEvent } from './bus-types';

export interface BusOptions {
  createClient: IpcClientFactory;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Uniform [0,1) for backoff jitter; injected for tests. */
  random?: () => number;
  /** Reconnect backoff: first delay base and cap (defaults 100 ms and 30 s). */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  /** Publishes held while disconnected (default 1000). */
  maxQueue?: number;
  /** Alarm and control messages held while disconnected (default 20000). */
  maxCriticalQueue?: number;
  /** Per-call timeout (default 10 s). */
  callTimeoutMs?: number;
  /** Told about deployment defects found after start (e.g. UnauthorizedError on a queued publish). */
  onFatal?: (err: FatalError) => void;
}

/** AWS IoT Core message payload limit (AWS IoT Core quotas: "Message payload size", 128 KB). */
export const IOT_CORE_MAX_PAYLOAD = 128 * 1024;

type Outgoing =
  | { kind: 'local'; topic: string; payload: object }
  | { kind: 'iot'; topic: string; payload: IpcPayload; qos: '0' | '1'; retain?: boolean; contentType?: string };

interface StreamEntry {
  readonly label: string;
  open(client: IpcClientLike): StreamLike<unknown>;
  onMessage(message: unknown): void;
  op: StreamLike<unknown> | undefined;
}

export function createBus(opts: BusOptions): Bus {
  return new IpcBus(opts);
}

/** Families whose messages must not be evicted by telemetry (see the header). */
const CRITICAL_FAMILIES: ReadonlySet<string> = new Set(['alarms', 'controlCommand', 'controlResult']);

function isCritical(item: Outgoing): boolean {
  if (item.kind !== 'local') return false;
  const family = parseTopic(item.topic)?.family;
  return family !== undefined && CRITICAL_FAMILIES.has(family);
}

/** An SDK blob (the SDK turns base64 into a Buffer; a string is taken as it is). */
function toBytes(p: IpcPayload): Uint8Array {
  if (typeof p === 'string') return Buffer.from(p, 'utf8');
  if (ArrayBuffer.isView(p)) return new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
  return new Uint8Array(p);
}

function needsReconnect(err: unknown): boolean {
  return isConnectionError(err) || (err instanceof TransientError && err.code === ErrorCode.IPC_TIMEOUT);
}

class IpcBus implements Bus {
  private status: ConnectionState = 'disconnected';
  private client: IpcClientLike | undefined;
  /** Bumped whenever a client is dropped; events and results from an older generation are ignored. */
  private gen = 0;
  private attempt = 0;
  private timer: TimerHandle | undefined;
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private flushing = false;
  private flushRun: Promise<void> | undefined;
  private readonly queue: BoundedQueue<Outgoing>;
  private readonly critical: BoundedQueue<Outgoing>;
  private criticalDrops = 0;
  private readonly streams = new Set<StreamEntry>();
  private readonly log: Logger;
  private readonly limited: LimitedLog;
  private readonly dispatch: DispatchDeps;
  private readonly timeoutMs: number;

  constructor(private readonly o: BusOptions) {
    this.log = o.logger.child({ module: 'bus' });
    this.limited = createLogLimiter(o.clock);
    this.timeoutMs = o.callTimeoutMs ?? 10000;
    this.queue = new BoundedQueue<Outgoing>(Math.max(1, o.maxQueue ?? 1000), (lost) => {
      o.metrics.drop('queue_overflow');
      this.limited('queue_overflow', (suppressed) => this.log.warn('IPC publish queue full; dropped the oldest message', { topic: lost.topic, suppressed }));
    });
    this.critical = new BoundedQueue<Outgoing>(Math.max(1, o.maxCriticalQueue ?? 20000), (lost) => {
      this.criticalDrops++;
      o.metrics.drop('alarm_queue_overflow');
      this.limited('alarm_queue_overflow', (suppressed) =>
        this.log.error('IPC alarm queue full; dropped the oldest alarm or control message (alarms are replayed from the journal on request)', { topic: lost.topic, suppressed }),
      );
    });
    this.dispatch = { metrics: o.metrics, log: this.log, limited: this.limited, fatal: (e) => this.fatal(e) };
    o.metrics.setConnectionState('disconnected');
    o.metrics.registerQueue('ipc', () => this.queue.length);
    o.metrics.registerQueue('ipc_alarms', () => this.critical.length);
  }

  get state(): ConnectionState {
    return this.status;
  }

  get criticalDropped(): number {
    return this.criticalDrops;
  }

  private get waiting(): number {
    return this.queue.length + this.critical.length;
  }

  /** The queue an item waits in. */
  private queueOf(item: Outgoing): BoundedQueue<Outgoing> {
    return isCritical(item) ? this.critical : this.queue;
  }

  /** The queue whose head goes next: alarms and control first. */
  private nextQueue(): BoundedQueue<Outgoing> | undefined {
    return this.critical.length > 0 ? this.critical : this.queue.length > 0 ? this.queue : undefined;
  }

  private setState(s: ConnectionState): void {
    this.status = s;
    this.o.metrics.setConnectionState(s);
  }

  // ---- connection ---------------------------------------------------------------------------

  connect(): Promise<void> {
    if (this.closing) return Promise.reject(new FatalError(ErrorCode.BUS_CLOSED, 'bus is closed'));
    if (this.status === 'connected') return Promise.resolve();
    this.connecting ??= this.connectOnce().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connectOnce(): Promise<void> {
    const gen = ++this.gen;
    this.setState('connecting');
    let client: IpcClientLike;
    try {
      client = this.o.createClient();
    } catch (err) {
      this.setState('disconnected');
      // The SDK throws here when AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT is unset
      // (the SDK's createDefaultClientConfig reads it): not running under a nucleus is not something a
      // retry fixes.
      throw new FatalError(ErrorCode.IPC_UNAVAILABLE, `cannot create the Greengrass IPC client: ${errorMessage(err)}`, { cause: err });
    }
    client.on('disconnection', (ev) => this.connectionLost(gen, ev?.reason ?? 'disconnection event'));
    this.client = client;
    try {
      await this.withTimeout(client.connect(), 'connect');
      // Re-activate every stream on the new connection before anything is flushed.
      for (const entry of this.streams) {
        if (gen !== this.gen) break;
        await this.activate(entry, client, gen);
      }
      if (gen !== this.gen) throw new TransientError(ErrorCode.IPC_DISCONNECTED, 'connection lost while connecting');
    } catch (err) {
      if (gen === this.gen) {
        this.gen++;
        this.dropClient();
        this.setState(this.closing ? 'closed' : 'disconnected');
      }
      throw classifyIpcError(err, 'connect');
    }
    this.attempt = 0;
    this.setState('connected');
    this.log.info('IPC connected', { streams: this.streams.size, queued: this.waiting });
    void this.flush(gen);
  }

  /** Forget the current client (its streams die with it) and close it in the background. */
  private dropClient(): void {
    const old = this.client;
    this.client = undefined;
    for (const entry of this.streams) entry.op = undefined;
    if (old) old.close().catch(() => undefined);
  }

  private connectionLost(gen: number, reason: unknown): void {
    if (gen !== this.gen || this.closing) return;
    this.gen++;
    this.dropClient();
    this.setState('disconnected');
    this.o.metrics.recordError(new TransientError(ErrorCode.IPC_DISCONNECTED, `IPC connection lost: ${errorMessage(reason)}`));
    this.log.warn('IPC connection lost; reconnecting', { reason: errorMessage(reason), queued: this.waiting });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing || this.timer !== undefined) return;
    this.attempt += 1;
    const delay = backoffDelay(this.attempt, {
      initialMs: this.o.reconnectInitialMs ?? 100,
      maxMs: this.o.reconnectMaxMs ?? 30000,
      random: this.o.random,
    });
    this.log.debug('IPC reconnect scheduled', { attempt: this.attempt, delayMs: delay });
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      this.connect().catch((err: unknown) => {
        if (err instanceof FatalError) return this.fatal(err);
        this.log.warn('IPC reconnect failed', { attempt: this.attempt, err: errorMessage(err) });
        this.scheduleReconnect();
      });
    }, delay);
  }

  private fatal(err: FatalError): void {
    this.o.metrics.recordError(err);
    this.log.error('fatal IPC error', { code: err.code, err: err.message });
    this.o.onFatal?.(err);
  }

  private withTimeout<T>(p: Promise<T>, operation: string, ms = this.timeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = this.o.clock.setTimeout(() => reject(new TransientError(ErrorCode.IPC_TIMEOUT, `${operation}: no answer from the nucleus within ${ms} ms`)), ms);
      p.then(
        (v) => {
          this.o.clock.clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          this.o.clock.clearTimeout(t);
          reject(e);
        },
      );
    });
  }

  // ---- streams ------------------------------------------------------------------------------

  private async activate(entry: StreamEntry, client: IpcClientLike, gen: number): Promise<void> {
    const op = entry.open(client);
    entry.op = op;
    op.on('message', (m) => {
      if (entry.op === op) entry.onMessage(m);
    });
    op.on('streamError', (e) => {
      if (entry.op !== op) return;
      this.o.metrics.recordError(classifyIpcError(e, entry.label));
      this.log.warn('stream error', { stream: entry.label, err: errorMessage(e) });
    });
    op.on('ended', () => {
      // The nucleus ended a stream we still hold: treat it as a broken connection, so the reconnect
      // path (with its backoff) re-establishes everything.
      if (entry.op === op && this.streams.has(entry)) this.connectionLost(gen, `${entry.label} ended`);
    });
    await this.withTimeout(op.activate(), entry.label);
  }

  private async addStream(entry: StreamEntry): Promise<Subscription> {
    if (this.closing) throw new FatalError(ErrorCode.BUS_CLOSED, `${entry.label}: bus is closed`);
    this.streams.add(entry);
    const client = this.client;
    const gen = this.gen;
    if (this.status === 'connected' && client) {
      try {
        await this.activate(entry, client, gen);
      } catch (err) {
        const e = classifyIpcError(err, entry.label);
        if (!needsReconnect(e)) {
          this.streams.delete(entry);
          entry.op = undefined;
          throw e;
        }
        // Kept: it is activated again after the reconnect.
        this.connectionLost(gen, e);
      }
    }
    return { close: () => this.removeStream(entry) };
  }

  private async removeStream(entry: StreamEntry): Promise<void> {
    this.streams.delete(entry);
    const op = entry.op;
    entry.op = undefined;
    if (op) await this.withTimeout(op.close(), `close ${entry.label}`, 2000).catch(() => undefined);
  }

  subscribe<P>(filter: TopicFilter<P>, handler: MessageHandler<P>, opts: { receiveMode?: ReceiveMode } = {}): Promise<Subscription> {
    const request = opts.receiveMode ? { topic: filter.filter, receiveMode: opts.receiveMode } : { topic: filter.filter };
    return this.addStream({
      label: `SubscribeToTopic ${filter.filter}`,
      open: (c) => c.subscribeToTopic(request),
      onMessage: (m) => dispatchMessage(this.dispatch, filter, handler, m as SubscriptionMessageLike),
      op: undefined,
    });
  }

  subscribeToConfigurationUpdate(handler: (keyPath: string[]) => void, keyPath: readonly string[] = []): Promise<Subscription> {
    return this.addStream({
      label: 'SubscribeToConfigurationUpdate',
      open: (c) => c.subscribeToConfigurationUpdate({ keyPath: [...keyPath] }),
      onMessage: (m) => {
        const ev = (m as { configurationUpdateEvent?: { keyPath?: unknown } }).configurationUpdateEvent;
        const kp = Array.isArray(ev?.keyPath) ? ev.keyPath.filter((k): k is string => typeof k === 'string') : [];
        safely(this.dispatch, 'configuration update handler', () => handler(kp));
      },
      op: undefined,
    });
  }

  subscribeToValidateConfigurationUpdates(handler: (event: ValidationEvent) => void): Promise<Subscription> {
    return this.addStream({
      label: 'SubscribeToValidateConfigurationUpdates',
      open: (c) => c.subscribeToValidateConfigurationUpdates({}),
      onMessage: (m) => {
        const ev = (m as { validateConfigurationUpdateEvent?: { deploymentId?: unknown; configuration?: unknown } }).validateConfigurationUpdateEvent;
        if (typeof ev?.deploymentId !== 'string') return;
        const event: ValidationEvent = { deploymentId: ev.deploymentId, configuration: ev.configuration };
        safely(this.dispatch, 'configuration validation handler', () => handler(event));
      },
      op: undefined,
    });
  }

  async sendConfigurationValidityReport(deploymentId: string, accepted: boolean, message?: string): Promise<void> {
    const report = { status: accepted ? ('ACCEPTED' as const) : ('REJECTED' as const), deploymentId, ...(message !== undefined ? { message } : {}) };
    await this.call('SendConfigurationValidityReport', (c) => c.sendConfigurationValidityReport({ configurationValidityReport: report }));
  }

  subscribeToComponentUpdates(handler: (event: ComponentUpdateEvent) => void): Promise<Subscription> {
    return this.addStream({
      label: 'SubscribeToComponentUpdates',
      open: (c) => c.subscribeToComponentUpdates({}),
      onMessage: (m) => {
        const ev = m as { preUpdateEvent?: { deploymentId?: unknown; isGgcRestarting?: unknown }; postUpdateEvent?: { deploymentId?: unknown } };
        let e: ComponentUpdateEvent | undefined;
        if (typeof ev.preUpdateEvent?.deploymentId === 'string') {
          e = { kind: 'pre', deploymentId: ev.preUpdateEvent.deploymentId, isGgcRestarting: ev.preUpdateEvent.isGgcRestarting === true };
        } else if (typeof ev.postUpdateEvent?.deploymentId === 'string') {
          e = { kind: 'post', deploymentId: ev.postUpdateEvent.deploymentId };
        }
        if (e) {
          const event = e;
          safely(this.dispatch, 'component update handler', () => handler(event));
        }
      },
      op: undefined,
    });
  }

  // ---- publishing ---------------------------------------------------------------------------

  publish<P extends object>(topic: Topic<P>, payload: P): Promise<PublishOutcome> {
    return this.send({ kind: 'local', topic, payload });
  }

  publishToIoTCore<P extends object>(topic: IotTopic<P>, payload: P | Uint8Array, qos: 0 | 1, opts: { retain?: boolean; contentType?: string } = {}): Promise<PublishOutcome> {
    const bytes = payload instanceof Uint8Array ? payload : Buffer.from(JSON.stringify(payload), 'utf8');
    if (bytes.byteLength > IOT_CORE_MAX_PAYLOAD) {
      this.o.metrics.drop('payload_too_large');
      return Promise.reject(new InputError('payload_too_large', `IoT Core payload for ${topic} is ${bytes.byteLength} bytes (limit ${IOT_CORE_MAX_PAYLOAD})`));
    }
    const item: Outgoing = { kind: 'iot', topic, payload: bytes, qos: qos === 1 ? '1' : '0' };
    if (opts.retain !== undefined) item.retain = opts.retain;
    if (opts.contentType !== undefined) item.contentType = opts.contentType;
    return this.send(item);
  }

  private deliver(client: IpcClientLike, item: Outgoing): Promise<unknown> {
    if (item.kind === 'local') {
      return this.withTimeout(client.publishToTopic({ topic: item.topic, publishMessage: { jsonMessage: { message: item.payload } } }), `PublishToTopic ${item.topic}`);
    }
    const req: Parameters<IpcClientLike['publishToIoTCore']>[0] = { topicName: item.topic, qos: item.qos, payload: item.payload };
    if (item.retain !== undefined) req.retain = item.retain;
    if (item.contentType !== undefined) req.contentType = item.contentType;
    return this.withTimeout(client.publishToIoTCore(req), `PublishToIoTCore ${item.topic}`);
  }

  private async send(item: Outgoing): Promise<PublishOutcome> {
    if (this.closing) throw new FatalError(ErrorCode.BUS_CLOSED, `publish to ${item.topic}: bus is closed`);
    const client = this.client;
    // The direct path only when nothing is waiting, so queued messages keep their order.
    if (this.status !== 'connected' || !client || this.waiting > 0 || this.flushing) {
      this.queueOf(item).push(item);
      if (this.status === 'connected' && !this.flushing) void this.flush(this.gen);
      return 'queued';
    }
    const gen = this.gen;
    try {
      await this.deliver(client, item);
      this.o.metrics.incOut();
      return 'sent';
    } catch (err) {
      const e = classifyIpcError(err, item.kind === 'local' ? 'PublishToTopic' : 'PublishToIoTCore');
      if (needsReconnect(e) && !this.closing) {
        this.queueOf(item).unshift(item);
        this.connectionLost(gen, e);
        return 'queued';
      }
      if (e instanceof FatalError) this.fatal(e);
      else this.o.metrics.recordError(e);
      throw e;
    }
  }

  private flush(gen: number): Promise<void> {
    if (this.flushRun) return this.flushRun;
    this.flushRun = this.flushLoop(gen).finally(() => {
      this.flushRun = undefined;
    });
    return this.flushRun;
  }

  private async flushLoop(gen: number): Promise<void> {
    this.flushing = true;
    try {
      for (let q = this.nextQueue(); q && gen === this.gen && this.status === 'connected' && this.client; q = this.nextQueue()) {
        const item = q.peek() as Outgoing;
        try {
          await this.deliver(this.client, item);
          if (q.peek() === item) q.shift();
          this.o.metrics.incOut();
        } catch (err) {
          const e = classifyIpcError(err, 'flush');
          if (needsReconnect(e)) {
            this.connectionLost(gen, e);
            return;
          }
          // The nucleus refused this one message (not the link): drop it, count it, go on.
          if (q.peek() === item) q.shift();
          this.o.metrics.drop('refused');
          if (e instanceof FatalError) this.fatal(e);
          else this.o.metrics.recordError(e);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  // ---- request/response wrappers -----------------------------------------------------------

  private async call<T>(operation: string, fn: (c: IpcClientLike) => Promise<T>): Promise<T> {
    const client = this.client;
    const gen = this.gen;
    if (this.status !== 'connected' || !client) throw new TransientError(ErrorCode.IPC_DISCONNECTED, `${operation}: IPC is not connected`);
    try {
      return await this.withTimeout(fn(client), operation);
    } catch (err) {
      const e = classifyIpcError(err, operation);
      if (needsReconnect(e)) this.connectionLost(gen, e);
      throw e;
    }
  }

  async getConfiguration(keyPath: readonly string[] = [], componentName?: string): Promise<unknown> {
    const req = componentName ? { keyPath: [...keyPath], componentName } : { keyPath: [...keyPath] };
    const res = await this.call('GetConfiguration', (c) => c.getConfiguration(req));
    return res.value;
  }

  async updateState(state: ReportedState): Promise<void> {
    await this.call('UpdateState', (c) => c.updateState({ state }));
  }

  async deferComponentUpdate(deploymentId: string, recheckAfterMs: number, message?: string): Promise<void> {
    const req = message === undefined ? { deploymentId, recheckAfterMs } : { deploymentId, recheckAfterMs, message };
    await this.call('DeferComponentUpdate', (c) => c.deferComponentUpdate(req));
  }

  /**
   * GetSecretValue. `refresh` asks the secret manager component to fetch the secret's latest value
   * from AWS Secrets Manager first (GetSecretValueRequest.refresh); without it the component answers
   * from the copy it fetched when it was last deployed, so a rotated secret is not seen.
   */
  async getSecretValue(secretId: string, opts: { versionId?: string; versionStage?: string; refresh?: boolean } = {}): Promise<SecretValue> {
    const req = {
      secretId,
      ...(opts.versionId !== undefined ? { versionId: opts.versionId } : {}),
      ...(opts.versionStage !== undefined ? { versionStage: opts.versionStage } : {}),
      ...(opts.refresh === true ? { refresh: true } : {}),
    };
    // The response is never logged or put into an error: it holds the secret.
    const res = await this.call('GetSecretValue', (c) => c.getSecretValue(req));
    const v = res.secretValue ?? {};
    const out: SecretValue = { secretId: res.secretId, versionId: res.versionId, versionStage: Array.isArray(res.versionStage) ? [...res.versionStage] : [] };
    if (typeof v.secretString === 'string') out.secretString = v.secretString;
    else if (v.secretBinary !== undefined) out.secretBinary = toBytes(v.secretBinary);
    return out;
  }

  // ---- shutdown -----------------------------------------------------------------------------

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    // What is waiting goes out first if the nucleus is there (bounded: SIGTERM has a grace time).
    if (this.status === 'connected' && this.waiting > 0) await this.withTimeout(this.flush(this.gen), 'flush before close', 1000).catch(() => undefined);
    this.gen++;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const unsent = this.queue.drain().length;
    const unsentCritical = this.critical.drain().length;
    if (unsent > 0) this.o.metrics.drop('closed', unsent);
    if (unsentCritical > 0) this.o.metrics.drop('closed_alarms', unsentCritical);
    if (unsent + unsentCritical > 0) this.log.warn('closing with unsent messages (alarms among them stay in their journal)', { dropped: unsent, alarmsAndControl: unsentCritical });
    const ops = Array.from(this.streams, (e) => e.op).filter((op): op is StreamLike<unknown> => op !== undefined);
    this.streams.clear();
    const client = this.client;
    this.client = undefined;
    this.setState('closed');
    // Close each streaming operation, then the client (the SDK leaks native resources otherwise),
    // bounded so SIGTERM handling stays inside the nucleus's 5 s grace before SIGKILL (nucleus
    // util/Exec.java; docs/local-runtime.md "Components and their lifecycle").
    await Promise.allSettled(ops.map((op) => this.withTimeout(op.close(), 'close stream', 1000)));
    if (client) await this.withTimeout(client.close(), 'close client', 1000).catch(() => undefined);
  }
}
