/**
 * The IoT Core side of PublishToIoTCore / SubscribeToIoTCore for the local runtime: an MQTT bridge to an
 * embedded aedes broker (standing in for AWS IoT Core) or to an external broker such as mosquitto, with
 * the nucleus's offline spool in front of it.
 *
 * Behaviour, after the nucleus's `mqttclient/MqttClient.java`, `spool/Spool.java` and
 * `builtin/services/mqttproxy/MqttProxyIPCAgent.java` (Greengrass Developer Guide,
 * "Publish/subscribe AWS IoT Core MQTT messages", and the nucleus component's `mqtt.spooler`
 * configuration):
 * - online, a publish goes straight to the broker and resolves when it is written (QoS 0) or PUBACKed
 *   (QoS 1), failing after `ackTimeoutMs` like the nucleus's MQTT operation timeout;
 * - offline ("cloud unreachable" switch off, or the broker down), a publish is spooled and resolves once
 *   spooled, as the nucleus answers PublishToIoTCore once the message is in its spool. QoS 0 is refused
 *   ("Device is offline. Dropping QoS 0 message.") unless keepQos0WhenOffline; a full spool refuses the
 *   message after evicting what QoS 0 it can. With behaviour 'fail' nothing is spooled;
 * - back online, the spool drains in order (a few messages in flight at a time, as the nucleus's
 *   `maxInFlightPublishes`), and publishes made meanwhile queue behind it; a failed send goes back to
 *   the front and is retried up to `maxPublishRetry` (nucleus default 100) times;
 * - topics are checked against IoT Core limits (`IotCoreTopicValidator`) and payloads against
 *   `maxMessageSizeInBytes` (128 KiB) so that what would fail on a device fails here too;
 * - subscriptions are shared per filter and ref-counted; they are (re)made on every connect, since the
 *   bridge uses a clean session. While unreachable, nothing from the cloud is delivered.
 * The outage is simulated: the connection stays up and the bridge holds traffic in both directions.
 */
import { connect } from 'mqtt';
import type { IClientSubscribeOptions, IPublishPacket, MqttClient } from 'mqtt';
import type { Logger } from '../../components/lib/logger';
import { EmbeddedBroker, startEmbeddedBroker } from './iotcore-broker';
import { MessageSpool, SpoolEntry, SpoolFullError } from './iotcore-spool';
import { IotMessage, fromPacket, iotTopicError, mqttTopicMatches, toPublishOptions } from './iotcore-wire';

export type { IotMessage } from './iotcore-wire';

export interface IotCoreOptions {
  /** 'embedded': an aedes broker on 127.0.0.1, port 0 (MQTT 3.1.1); or an external broker URL (MQTT 5 unless told otherwise). */
  broker: { kind: 'embedded' } | { kind: 'external'; url: string; protocolVersion?: 4 | 5 };
  clientId: string;
  offline: { behaviour: 'spool' | 'fail'; maxSpoolBytes: number; keepQos0WhenOffline: boolean };
  logger: Logger;
  /** Fixed delay between reconnect attempts (mqtt.js `reconnectPeriod`); default 1000. */
  reconnectPeriodMs?: number;
  /** How long a QoS 1 publish or a subscribe waits for its ack; default 30000 (nucleus `operationTimeoutMs`). */
  ackTimeoutMs?: number;
  /** Largest payload accepted; default 131072 (nucleus `mqtt.maxMessageSizeInBytes`). */
  maxMessageBytes?: number;
}

/** A publish or subscribe that cannot be done; the IPC layer maps it to ServiceError. */
export class IotCoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IotCoreError';
  }
}

export interface IotCoreStats {
  published: number;
  spooled: number;
  spoolBytes: number;
  spoolDepth: number;
  dropped: number;
  rejected: number;
  connected: boolean;
}

export interface IotCore {
  start(): Promise<void>;
  close(): Promise<void>;
  readonly brokerUrl: string;
  publish(msg: IotMessage): Promise<void>;
  subscribe(filter: string, qos: 0 | 1, onMessage: (msg: IotMessage) => void): Promise<() => void>;
  setReachable(reachable: boolean): void;
  readonly reachable: boolean;
  stats(): IotCoreStats;
}

const MAX_IN_FLIGHT = 16;
const MAX_PUBLISH_RETRY = 100;

interface FilterSub {
  /** MQTT 5 subscription identifier: tells which of our filters a delivered copy is for. */
  id: number;
  qos: 0 | 1;
  handlers: Set<{ fn: (msg: IotMessage) => void }>;
  /** The broker subscription in progress or done; later subscribers of the filter wait on it too. */
  ready: Promise<void>;
}

export function createIotCore(opts: IotCoreOptions): IotCore {
  return new Bridge(opts);
}

class Bridge implements IotCore {
  private readonly log: Logger;
  private readonly spool: MessageSpool<IotMessage>;
  private readonly filters = new Map<string, FilterSub>();
  private readonly pending = new Set<(err: Error) => void>();
  private readonly protocolVersion: 4 | 5;
  private readonly ackTimeoutMs: number;
  private readonly maxMessageBytes: number;
  private broker: EmbeddedBroker | undefined;
  private client: MqttClient | undefined;
  private url = '';
  private isReachable = true;
  private started = false;
  private closed = false;
  private draining = false;
  private inFlight = 0;
  private nextSubscriptionId = 1;
  private readonly counters = { published: 0, spooled: 0, dropped: 0, rejected: 0 };

  constructor(private readonly opts: IotCoreOptions) {
    this.log = opts.logger.child({ module: 'iotcore' });
    this.spool = new MessageSpool(opts.offline.maxSpoolBytes);
    this.protocolVersion = opts.broker.kind === 'embedded' ? 4 : opts.broker.protocolVersion ?? 5;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 30000;
    this.maxMessageBytes = opts.maxMessageBytes ?? 128 * 1024;
  }

  get brokerUrl(): string {
    return this.url;
  }

  get reachable(): boolean {
    return this.isReachable;
  }

  async start(): Promise<void> {
    if (this.started) throw new IotCoreError('already started');
    this.started = true;
    if (this.opts.broker.kind === 'embedded') {
      this.broker = await startEmbeddedBroker(this.log);
      this.url = this.broker.url;
    } else {
      this.url = this.opts.broker.url;
    }
    const client = connect(this.url, {
      clientId: this.opts.clientId,
      protocolVersion: this.protocolVersion,
      clean: true,
      reconnectPeriod: this.opts.reconnectPeriodMs ?? 1000,
      connectTimeout: 10000,
      resubscribe: false, // we resubscribe our own registry on every connect
      queueQoSZero: false,
    });
    this.client = client;
    client.on('connect', () => this.onConnect());
    client.on('close', () => this.log.debug('broker connection closed', { url: this.url }));
    // 'offline' fires once per outage; 'error' on every failed reconnect, so it stays at debug.
    client.on('offline', () => this.log.warn('IoT Core broker unreachable; spooling until it is back', { url: this.url }));
    client.on('error', (err) => this.log.debug('IoT Core connection error', { url: this.url, err }));
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
    // An unreachable broker must not block startup: it just means we start offline.
    await new Promise<void>((resolve) => {
      const done = (): void => {
        client.off('connect', done);
        client.off('close', done);
        resolve();
      };
      client.on('connect', done);
      client.on('close', done);
    });
    this.log.info('IoT Core bridge started', { url: this.url, connected: client.connected, protocolVersion: this.protocolVersion });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const lost = this.spool.clear();
    if (lost.length > 0) this.log.warn('closing with spooled messages; they are lost', { count: lost.length });
    for (const fail of [...this.pending]) fail(new IotCoreError('IoT Core bridge closed'));
    this.pending.clear();
    const client = this.client;
    if (client) await new Promise<void>((resolve) => client.end(true, () => resolve()));
    await this.broker?.close();
  }

  setReachable(reachable: boolean): void {
    if (reachable === this.isReachable) return;
    this.isReachable = reachable;
    this.log.info(reachable ? 'IoT Core reachable again' : 'IoT Core unreachable (simulated outage)', { spoolDepth: this.spool.depth });
    if (reachable) this.drain();
  }

  stats(): IotCoreStats {
    return { ...this.counters, spoolBytes: this.spool.bytes, spoolDepth: this.spool.depth, connected: this.client?.connected === true };
  }

  async publish(msg: IotMessage): Promise<void> {
    if (!this.started || this.closed) throw this.reject('IoT Core bridge is not running');
    const invalid = iotTopicError(msg.topicName, 'publish', this.protocolVersion === 5);
    if (invalid) throw this.reject(invalid);
    if (msg.qos !== 0 && msg.qos !== 1) throw this.reject(`unsupported QoS ${String(msg.qos)}`);
    if (!Buffer.isBuffer(msg.payload)) throw this.reject('payload must be a Buffer');
    if (msg.payload.length > this.maxMessageBytes) {
      throw this.reject(`The publishing message size ${msg.payload.length} bytes exceeds the configured limit of ${this.maxMessageBytes} bytes`);
    }

    if (this.online() && this.spool.depth === 0) {
      try {
        await this.send(msg);
        this.counters.published++;
        return;
      } catch (err) {
        throw this.reject(`Publish to topic ${msg.topicName} failed: ${(err as Error).message}`);
      }
    }
    // Offline, or draining: keep order by going through the spool.
    if (!this.online()) {
      if (this.opts.offline.behaviour === 'fail') throw this.reject('IoT Core is unreachable and offline.behaviour is fail');
      if (msg.qos === 0 && !this.opts.offline.keepQos0WhenOffline) {
        this.counters.dropped++;
        throw new IotCoreError('Device is offline. Dropping QoS 0 message.');
      }
    }
    try {
      this.counters.dropped += this.spool.add(msg);
    } catch (err) {
      if (err instanceof SpoolFullError) throw this.reject(err.message);
      throw err;
    }
    this.counters.spooled++;
    this.drain();
  }

  async subscribe(filter: string, qos: 0 | 1, onMessage: (msg: IotMessage) => void): Promise<() => void> {
    if (!this.started || this.closed) throw new IotCoreError('IoT Core bridge is not running');
    const invalid = iotTopicError(filter, 'subscribe', this.protocolVersion === 5);
    if (invalid) throw new IotCoreError(invalid);
    const handler = { fn: onMessage };
    let sub = this.filters.get(filter);
    let needsBroker = false;
    if (!sub) {
      sub = { id: this.nextSubscriptionId++, qos, handlers: new Set(), ready: Promise.resolve() };
      this.filters.set(filter, sub);
      needsBroker = true;
    } else if (qos > sub.qos) {
      sub.qos = qos;
      needsBroker = true;
    }
    sub.handlers.add(handler);
    // Not connected: the subscription is made on connect; answering now keeps the IPC call from hanging.
    if (needsBroker && this.client?.connected) sub.ready = this.brokerSubscribe(filter, sub);
    try {
      await sub.ready;
    } catch (err) {
      sub.handlers.delete(handler);
      if (sub.handlers.size === 0 && this.filters.get(filter) === sub) this.filters.delete(filter);
      throw new IotCoreError(`Subscribe to topic ${filter} failed: ${(err as Error).message}`);
    }
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const s = this.filters.get(filter);
      if (!s) return;
      s.handlers.delete(handler);
      if (s.handlers.size > 0) return;
      this.filters.delete(filter);
      if (this.client?.connected && !this.closed) {
        this.client.unsubscribe(filter, (err) => {
          if (err) this.log.warn('unsubscribe failed', { filter, err });
        });
      }
    };
  }

  // ---- internals --------------------------------------------------------------------------------

  private online(): boolean {
    return this.isReachable && !this.closed && this.client?.connected === true;
  }

  private reject(message: string): IotCoreError {
    this.counters.rejected++;
    return new IotCoreError(message);
  }

  private onConnect(): void {
    this.log.info('connected to IoT Core broker', { url: this.url, spoolDepth: this.spool.depth });
    for (const [filter, sub] of this.filters) {
      sub.ready = this.brokerSubscribe(filter, sub);
      sub.ready.catch((err: unknown) => this.log.error('resubscribe failed', { filter, err }));
    }
    this.drain();
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (!this.isReachable || this.closed) {
      this.log.debug('cloud message held back: IoT Core unreachable', { topic });
      return;
    }
    const msg = fromPacket(topic, payload, packet);
    // MQTT 5 brokers may send one copy per overlapping subscription (mosquitto does), each tagged with
    // its subscription identifier: route by identifier so no handler sees a message twice.
    const raw = packet.properties?.subscriptionIdentifier;
    const ids = raw === undefined ? undefined : new Set(Array.isArray(raw) ? raw : [raw]);
    for (const [filter, sub] of this.filters) {
      if (ids ? !ids.has(sub.id) : !mqttTopicMatches(filter, topic)) continue;
      for (const h of [...sub.handlers]) {
        try {
          h.fn(msg);
        } catch (err) {
          this.log.error('IoT Core subscriber threw', { filter, topic, err });
        }
      }
    }
  }

  /** Sends the spool in order while online, with a bounded number of messages in flight (re-entry guarded). */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.online() && this.inFlight < MAX_IN_FLIGHT) {
        const entry = this.spool.take();
        if (!entry) break;
        this.inFlight++;
        this.send(entry.msg).then(
          () => this.settle(entry, undefined),
          (err: unknown) => this.settle(entry, err),
        );
      }
    } finally {
      // Order is kept by `publish`, which spools whenever the spool is not empty.
      this.draining = false;
    }
  }

  private settle(entry: SpoolEntry<IotMessage>, err: unknown): void {
    this.inFlight--;
    if (this.closed) return;
    if (err === undefined) {
      this.spool.release(entry);
      this.counters.published++;
    } else if (++entry.retries > MAX_PUBLISH_RETRY) {
      this.spool.release(entry);
      this.counters.dropped++;
      this.log.error('dropping spooled message after retries', { topic: entry.msg.topicName, retries: entry.retries, err });
    } else {
      this.spool.putBack(entry);
      this.log.warn('spooled publish failed; will retry', { topic: entry.msg.topicName, err });
    }
    this.drain();
  }

  private send(msg: IotMessage): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new IotCoreError('not connected'));
    return this.withAck(`PUBACK for ${msg.topicName}`, (done) =>
      client.publish(msg.topicName, msg.payload, toPublishOptions(msg, this.protocolVersion), (err) => done(err)),
    );
  }

  private brokerSubscribe(filter: string, sub: FilterSub): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new IotCoreError('not connected'));
    const options: IClientSubscribeOptions = { qos: sub.qos };
    if (this.protocolVersion === 5) options.properties = { subscriptionIdentifier: sub.id };
    return this.withAck(`SUBACK for ${filter}`, (done) =>
      client.subscribe(filter, options, (err, granted) => {
        if (err) done(err);
        else if (granted?.some((g) => g.qos === 128)) done(new IotCoreError('broker refused the subscription'));
        else done(undefined);
      }),
    );
  }

  /** Runs an MQTT operation with a timeout; pending operations fail when the bridge closes. */
  private withAck(what: string, op: (done: (err: Error | undefined) => void) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.pending.delete(finish);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => finish(new IotCoreError(`timed out after ${this.ackTimeoutMs} ms waiting for ${what}`)), this.ackTimeoutMs);
      this.pending.add(finish);
      op(finish);
    });
  }
}
