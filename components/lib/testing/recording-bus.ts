/**
 * An in-memory Bus for component tests, crash runners and hot-path benchmarks: publishes are
 * recorded (or only counted), each checked against the contract (topic family and payload
 * validator), so a malformed payload shows up in `invalid` and fails the test that looks; the test
 * delivers messages to the component's subscriptions with `deliver`, validated as the real bus does.
 * For the IPC path itself (reconnects, timeouts) use FakeNucleus with the real bus.
 */
import type { Bus, MessageHandler, PublishOutcome, SecretValue, Subscription, ValidationEvent } from '../bus-types';
import { ErrorCode, FatalError, TransientError } from '../errors';
import { parseTopic, validatorFor, type LocalFamily, type Topic, type TopicFilter } from '../contract';

export interface Published {
  topic: string;
  family: LocalFamily | undefined;
  payload: unknown;
}

export interface RecordingBusOptions {
  /** false: only count publishes and skip validation (benchmarks: no unbounded array, no extra work). */
  record?: boolean;
}

export class RecordingBus implements Bus {
  state: Bus['state'] = 'connected';
  readonly criticalDropped = 0;
  readonly published: Published[] = [];
  /** Contract violations of published messages (`topic: reason`). */
  readonly invalid: string[] = [];
  readonly validityReports: Array<{ deploymentId: string; accepted: boolean; message?: string }> = [];
  publishCount = 0;
  /**
   * Secrets getSecretValue serves (secret id -> string), or what it does instead: `unauthorized`
   * (FatalError IPC_UNAUTHORIZED, as the real bus classifies it), `unavailable` (TransientError).
   * An id not here is not found.
   */
  readonly secrets = new Map<string, string | { fail: 'unauthorized' | 'unavailable' }>();
  /** Secret ids asked for, in order. */
  readonly secretRequests: string[] = [];
  private subs: Array<{ filter: TopicFilter<unknown>; handler: MessageHandler<unknown> }> = [];
  private validators: Array<(e: ValidationEvent) => void> = [];
  private listeners: Array<() => void> = [];
  private readonly record: boolean;

  constructor(opts: RecordingBusOptions | boolean = {}) {
    this.record = typeof opts === 'boolean' ? opts : opts.record !== false;
  }

  async connect(): Promise<void> {}

  publish<P extends object>(topic: Topic<P>, payload: P): Promise<PublishOutcome> {
    this.publishCount++;
    if (this.record) {
      const parsed = parseTopic(topic);
      if (!parsed) this.invalid.push(`unknown topic ${topic}`);
      else {
        const v = validatorFor(parsed.family)(JSON.parse(JSON.stringify(payload)));
        if (!v.ok) this.invalid.push(`${topic}: ${v.reason}`);
      }
      this.published.push({ topic, family: parsed?.family, payload });
      for (const l of this.listeners.splice(0)) l();
    }
    return Promise.resolve('sent');
  }

  publishToIoTCore(): Promise<PublishOutcome> {
    return Promise.resolve('sent');
  }

  subscribe<P>(filter: TopicFilter<P>, handler: MessageHandler<P>): Promise<Subscription> {
    const entry = { filter: filter as TopicFilter<unknown>, handler: handler as MessageHandler<unknown> };
    this.subs.push(entry);
    return Promise.resolve({ close: () => Promise.resolve(void (this.subs = this.subs.filter((s) => s !== entry))) });
  }

  /** Families with a live subscription. */
  subscribed(): string[] {
    return this.subs.map((s) => s.filter.family);
  }

  /**
   * Deliver a payload to every subscription of the given family, as the bus would: validated
   * first; an invalid payload is dropped (`strict`: thrown, so the test sees it). Resolves when
   * every handler did.
   */
  async deliver(family: string, topic: string, payload: unknown, opts: { strict?: boolean } = {}): Promise<void> {
    for (const s of [...this.subs]) {
      if (s.filter.family !== family) continue;
      const v = s.filter.validate(payload);
      if (v.ok) await s.handler(v.value, topic);
      else if (opts.strict) throw new Error(v.reason);
    }
  }

  /** Recorded payloads of a family (optionally of one asset). */
  of<T>(family: LocalFamily, assetId?: string): T[] {
    return this.published.filter((p) => p.family === family && (assetId === undefined || (p.payload as { assetId?: string }).assetId === assetId)).map((p) => p.payload as T);
  }

  /** Recorded publishes whose topic contains `part` (e.g. `/alarms`). */
  on(part: string): unknown[] {
    return this.published.filter((p) => p.topic.includes(part)).map((p) => p.payload);
  }

  /** Resolves when `cond` holds, re-checked after each publish; rejects after `timeoutMs`. */
  async until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.listeners.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Propose a configuration, as a deployment does; the component answers with sendConfigurationValidityReport. */
  propose(deploymentId: string, configuration: unknown): void {
    for (const v of this.validators) v({ deploymentId, configuration });
  }

  async getConfiguration(): Promise<unknown> {
    return {};
  }
  async subscribeToConfigurationUpdate(): Promise<Subscription> {
    return { close: async () => undefined };
  }
  async subscribeToValidateConfigurationUpdates(handler: (e: ValidationEvent) => void): Promise<Subscription> {
    this.validators.push(handler);
    return { close: async () => void (this.validators = this.validators.filter((v) => v !== handler)) };
  }
  async sendConfigurationValidityReport(deploymentId: string, accepted: boolean, message?: string): Promise<void> {
    this.validityReports.push({ deploymentId, accepted, ...(message !== undefined ? { message } : {}) });
  }
  async updateState(): Promise<void> {}
  async subscribeToComponentUpdates(): Promise<Subscription> {
    return { close: async () => undefined };
  }
  async deferComponentUpdate(): Promise<void> {}
  async getSecretValue(secretId: string): Promise<SecretValue> {
    this.secretRequests.push(secretId);
    const s = this.secrets.get(secretId);
    if (typeof s === 'string') return { secretId, versionId: 'recording-bus-1', versionStage: ['AWSCURRENT'], secretString: s };
    if (s?.fail === 'unauthorized') throw new FatalError(ErrorCode.IPC_UNAUTHORIZED, `GetSecretValue was denied by the nucleus: not authorized on resource ${secretId} (check the recipe's accessControl)`);
    if (s?.fail === 'unavailable') throw new TransientError(ErrorCode.IPC_DISCONNECTED, 'GetSecretValue: IPC is not connected');
    throw new TransientError(ErrorCode.IPC_CALL_FAILED, 'GetSecretValue failed: Secret not found', { details: { serviceError: 'ResourceNotFoundError' } });
  }
  async close(): Promise<void> {
    this.state = 'closed';
  }
}
