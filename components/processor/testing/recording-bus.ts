/**
 * An in-memory Bus for the Processor's tests, crash runner and hot-path benchmark: publishes are
 * recorded (or counted only), subscriptions are handlers that `deliver` calls. Payloads pass the
 * subscription filter's validator as on the real bus.
 */
import type { Bus, MessageHandler, PublishOutcome, Subscription } from '../../lib/bus-types';
import type { Topic, TopicFilter } from '../../lib/contract';

export interface Published {
  topic: string;
  payload: unknown;
}

export class RecordingBus implements Bus {
  readonly state = 'connected' as const;
  readonly published: Published[] = [];
  publishCount = 0;
  private readonly subs: Array<{ filter: TopicFilter<unknown>; handler: MessageHandler<unknown> }> = [];

  /** `record: false` only counts publishes (benchmarks: no unbounded array). */
  constructor(private readonly record = true) {}

  connect(): Promise<void> {
    return Promise.resolve();
  }

  publish<P extends object>(topic: Topic<P>, payload: P): Promise<PublishOutcome> {
    this.publishCount++;
    if (this.record) this.published.push({ topic, payload });
    return Promise.resolve('sent');
  }

  publishToIoTCore(): Promise<PublishOutcome> {
    return Promise.resolve('sent');
  }

  subscribe<P>(filter: TopicFilter<P>, handler: MessageHandler<P>): Promise<Subscription> {
    const entry = { filter: filter as TopicFilter<unknown>, handler: handler as MessageHandler<unknown> };
    this.subs.push(entry);
    return Promise.resolve({
      close: () => {
        const i = this.subs.indexOf(entry);
        if (i >= 0) this.subs.splice(i, 1);
        return Promise.resolve();
      },
    });
  }

  /** Deliver a payload to every subscription of the given family, as the bus would (validated first). */
  deliver(family: string, topic: string, payload: unknown): void {
    for (const s of this.subs) {
      if (s.filter.family !== family) continue;
      const v = s.filter.validate(payload);
      if (v.ok) void s.handler(v.value, topic);
    }
  }

  /** Recorded publishes whose topic contains `part` (e.g. `/alarms`). */
  on(part: string): unknown[] {
    return this.published.filter((p) => p.topic.includes(part)).map((p) => p.payload);
  }

  getConfiguration(): Promise<unknown> {
    return Promise.resolve({});
  }
  subscribeToConfigurationUpdate(): Promise<Subscription> {
    return Promise.resolve({ close: () => Promise.resolve() });
  }
  updateState(): Promise<void> {
    return Promise.resolve();
  }
  subscribeToComponentUpdates(): Promise<Subscription> {
    return Promise.resolve({ close: () => Promise.resolve() });
  }
  deferComponentUpdate(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
