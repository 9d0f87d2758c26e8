/**
 * An in-memory stand-in for the Greengrass nucleus's IPC side, for unit tests of the bus and of
 * components. It keeps the behaviours of the nucleus our code depends on (docs/local-runtime.md "IPC"):
 * one `connect()` per client, streams that deliver only after `activate()`, `+`/`#` filter
 * matching, the default receive mode (no self-delivery for wildcard filters), `disconnection` on
 * link loss with every stream ended, GetConfiguration of the whole tree for keyPath [].
 * The real wire protocol is exercised by the integration tests against scripts/runtime.
 */
import type {
  ComponentUpdatePolicyEventsLike,
  ConfigurationUpdateEventsLike,
  GetSecretValueResponseLike,
  IpcClientLike,
  IpcPayload,
  IpcQos,
  ReceiveMode,
  ReportedState,
  StreamLike,
  SubscriptionMessageLike,
  ValidateConfigurationUpdateEventsLike,
  ValidityStatus,
} from '../ipc';

type Listener = (arg: never) => void;

/** An error shaped like the SDK's RpcError. */
export function rpcError(type: number, message: string, serviceError?: Record<string, unknown>): Error {
  return Object.assign(new Error(message), { type, description: message, serviceError });
}

export function mqttMatch(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i < t.length; // Java nucleus quirk: a/# does not match a
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export class FakeStream<E> implements StreamLike<E> {
  private readonly listeners = new Map<string, Listener[]>();
  activated = false;
  closed = false;

  constructor(
    readonly client: FakeIpcClient,
    readonly kind: string,
    readonly request: Record<string, unknown>,
  ) {}

  on(event: 'message', listener: (message: E) => void): this;
  on(event: 'streamError', listener: (error: Error) => void): this;
  on(event: 'ended', listener: (event: unknown) => void): this;
  on(event: string, listener: (arg: never) => void): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }

  private emitRaw(event: string, arg: unknown): void {
    for (const l of this.listeners.get(event) ?? []) (l as (a: unknown) => void)(arg);
  }

  async activate(): Promise<unknown> {
    await this.client.nucleus.check(this.client, this.kind, this.request);
    this.activated = true;
    return {};
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  get live(): boolean {
    return this.activated && !this.closed && this.client.connected;
  }

  emit(message: E): void {
    if (this.live) this.emitRaw('message', message);
  }

  end(): void {
    this.closed = true;
    this.emitRaw('ended', {});
  }

  error(err: Error): void {
    this.emitRaw('streamError', err);
  }
}

export class FakeIpcClient implements IpcClientLike {
  connected = false;
  closed = false;
  private connectCalls = 0;
  private readonly disconnectionListeners: Array<(ev?: { reason?: unknown }) => void> = [];
  readonly streams: Array<FakeStream<unknown>> = [];

  constructor(readonly nucleus: FakeNucleus) {}

  async connect(): Promise<void> {
    this.connectCalls += 1;
    if (this.connectCalls > 1) throw rpcError(4, 'connect() may only be called once');
    await this.nucleus.check(this, 'connect', {});
    this.connected = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.connected = false;
  }

  on(event: 'disconnection', listener: (event?: { reason?: unknown }) => void): this {
    if (event === 'disconnection') this.disconnectionListeners.push(listener);
    return this;
  }

  /** Simulate the link dropping: every stream ends, then `disconnection` fires. */
  dropLink(): void {
    if (!this.connected) return;
    this.connected = false;
    for (const s of this.streams) if (!s.closed) s.end();
    for (const l of this.disconnectionListeners) l({ reason: new Error('socket closed') });
  }

  private stream<E>(kind: string, request: Record<string, unknown>): FakeStream<E> {
    const s = new FakeStream<E>(this, kind, request);
    this.streams.push(s as FakeStream<unknown>);
    return s;
  }

  private async op(kind: string, request: Record<string, unknown>): Promise<void> {
    if (!this.connected) throw rpcError(5, 'not connected');
    await this.nucleus.check(this, kind, request);
  }

  async publishToTopic(request: { topic: string; publishMessage: { jsonMessage?: { message?: unknown }; binaryMessage?: { message?: IpcPayload } } }): Promise<unknown> {
    await this.op('publishToTopic', request);
    this.nucleus.route(this, request.topic, request.publishMessage);
    return {};
  }

  subscribeToTopic(request: { topic: string; receiveMode?: ReceiveMode }): StreamLike<SubscriptionMessageLike> {
    return this.stream<SubscriptionMessageLike>('subscribeToTopic', request);
  }

  async publishToIoTCore(request: { topicName: string; qos: IpcQos; payload?: IpcPayload; retain?: boolean }): Promise<unknown> {
    await this.op('publishToIoTCore', request);
    const p = request.payload;
    const bytes = p === undefined ? Buffer.alloc(0) : typeof p === 'string' ? Buffer.from(p) : ArrayBuffer.isView(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : Buffer.from(p);
    this.nucleus.iotPublished.push({ topic: request.topicName, qos: request.qos, payload: bytes });
    return {};
  }

  async getConfiguration(request: { componentName?: string; keyPath: string[] }): Promise<{ componentName?: string; value?: unknown }> {
    await this.op('getConfiguration', request);
    let v: unknown = this.nucleus.config;
    for (const k of request.keyPath) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
    if (v === undefined) throw rpcError(8, 'Key not found', { _errorCode: 'ResourceNotFoundError', message: 'Key not found' });
    // A leaf comes back wrapped as {<lastKey>: value}, as the nucleus answers GetConfiguration
    // (ConfigStoreIPCEventStreamAgent.java).
    const last = request.keyPath[request.keyPath.length - 1];
    const value = typeof v === 'object' && v !== null ? structuredClone(v) : { [last ?? '']: v };
    return { componentName: this.nucleus.componentName, value };
  }

  subscribeToConfigurationUpdate(request: { componentName?: string; keyPath: string[] }): StreamLike<ConfigurationUpdateEventsLike> {
    return this.stream<ConfigurationUpdateEventsLike>('subscribeToConfigurationUpdate', request);
  }

  subscribeToValidateConfigurationUpdates(request: Record<string, never>): StreamLike<ValidateConfigurationUpdateEventsLike> {
    return this.stream<ValidateConfigurationUpdateEventsLike>('subscribeToValidateConfigurationUpdates', request);
  }

  async sendConfigurationValidityReport(request: { configurationValidityReport: { status: ValidityStatus; deploymentId: string; message?: string } }): Promise<unknown> {
    await this.op('sendConfigurationValidityReport', request);
    this.nucleus.validityReports.push({ ...request.configurationValidityReport });
    return {};
  }

  async updateState(request: { state: ReportedState }): Promise<unknown> {
    await this.op('updateState', request);
    this.nucleus.states.push(request.state);
    return {};
  }

  subscribeToComponentUpdates(request: Record<string, never>): StreamLike<ComponentUpdatePolicyEventsLike> {
    return this.stream<ComponentUpdatePolicyEventsLike>('subscribeToComponentUpdates', request);
  }

  async deferComponentUpdate(request: { deploymentId: string; message?: string; recheckAfterMs?: number }): Promise<unknown> {
    await this.op('deferComponentUpdate', request);
    this.nucleus.deferrals.push(request);
    return {};
  }

  async getSecretValue(request: { secretId: string; versionId?: string; versionStage?: string; refresh?: boolean }): Promise<GetSecretValueResponseLike> {
    await this.op('getSecretValue', request);
    this.nucleus.secretRequests.push(request.secretId);
    this.nucleus.secretRequestBodies.push({ ...request });
    const value = this.nucleus.secrets.get(request.secretId);
    const stageOk = request.versionStage === undefined || request.versionStage === 'AWSCURRENT';
    const versionOk = request.versionId === undefined || request.versionId === FAKE_SECRET_VERSION;
    if (value === undefined || !stageOk || !versionOk) throw rpcError(8, 'Secret not found', { _errorCode: 'ResourceNotFoundError', message: 'Secret not found' });
    return { secretId: request.secretId, versionId: FAKE_SECRET_VERSION, versionStage: ['AWSCURRENT'], secretValue: { secretString: value } };
  }
}

/** The one version every FakeNucleus secret has. */
export const FAKE_SECRET_VERSION = 'fake-version-1';

export interface FakeNucleusOptions {
  componentName?: string;
  config?: Record<string, unknown>;
}

export class FakeNucleus {
  readonly clients: FakeIpcClient[] = [];
  readonly published: Array<{ topic: string; message: unknown; from: FakeIpcClient | undefined }> = [];
  readonly iotPublished: Array<{ topic: string; qos: IpcQos; payload: Buffer }> = [];
  readonly states: ReportedState[] = [];
  readonly deferrals: Array<{ deploymentId: string; message?: string; recheckAfterMs?: number }> = [];
  readonly validityReports: Array<{ status: ValidityStatus; deploymentId: string; message?: string }> = [];
  readonly componentName: string;
  config: Record<string, unknown>;
  /** Make the next N `connect()` calls fail with a network error. */
  failConnects = 0;
  /** Topics (or filters) whose publish/subscribe is answered with UnauthorizedError. */
  readonly denied = new Set<string>();
  /** When set, every call of this kind hangs forever (the JS client has no timeouts). */
  hang: string | undefined;
  /** Secrets GetSecretValue serves (secret id -> string); a secret id in `denied` is refused. */
  readonly secrets = new Map<string, string>();
  /** Secret ids asked for, in order. */
  readonly secretRequests: string[] = [];
  /** The GetSecretValue requests as sent, in order. */
  readonly secretRequestBodies: Array<{ secretId: string; versionId?: string; versionStage?: string; refresh?: boolean }> = [];

  constructor(opts: FakeNucleusOptions = {}) {
    this.componentName = opts.componentName ?? 'com.example.Test';
    this.config = opts.config ?? {};
  }

  /** The factory handed to the bus: a fresh client each time. */
  readonly factory = (): IpcClientLike => {
    const c = new FakeIpcClient(this);
    this.clients.push(c);
    return c;
  };

  get current(): FakeIpcClient | undefined {
    return [...this.clients].reverse().find((c) => c.connected);
  }

  /** Authorisation and fault injection for every call. */
  async check(_client: FakeIpcClient, kind: string, request: Record<string, unknown>): Promise<void> {
    if (this.hang === kind) await new Promise(() => undefined);
    if (kind === 'connect' && this.failConnects > 0) {
      this.failConnects -= 1;
      throw rpcError(5, 'connection refused');
    }
    const topic = request['topic'] ?? request['topicName'];
    if (typeof topic === 'string' && this.denied.has(topic)) {
      throw rpcError(8, 'not authorized', { _errorCode: 'UnauthorizedError', message: `Principal ${this.componentName} is not authorized to perform aws.greengrass.ipc.pubsub:${kind} on resource ${topic}` });
    }
    const secretId = request['secretId'];
    if (kind === 'getSecretValue' && typeof secretId === 'string' && this.denied.has(secretId)) {
      throw rpcError(8, 'not authorized', { _errorCode: 'UnauthorizedError', message: `Principal ${this.componentName} is not authorized to perform aws.greengrass.SecretManager:aws.greengrass#GetSecretValue on resource ${secretId}` });
    }
  }

  /** Live topic subscriptions, for asserting what is subscribed. */
  topicStreams(): Array<FakeStream<SubscriptionMessageLike>> {
    return this.clients.flatMap((c) => c.streams.filter((s) => s.kind === 'subscribeToTopic' && s.live)) as Array<FakeStream<SubscriptionMessageLike>>;
  }

  /** Deliver as the nucleus would. `from` is the publishing client (undefined = another component). */
  route(from: FakeIpcClient | undefined, topic: string, msg: { jsonMessage?: { message?: unknown }; binaryMessage?: { message?: IpcPayload } }): void {
    this.published.push({ topic, message: msg.jsonMessage ? msg.jsonMessage.message : msg.binaryMessage?.message, from });
    for (const s of this.topicStreams()) {
      const filter = String(s.request['topic']);
      if (!mqttMatch(filter, topic)) continue;
      const wildcard = filter.split('/').some((l) => l === '+' || l === '#');
      const mode = s.request['receiveMode'] ?? (wildcard ? 'RECEIVE_MESSAGES_FROM_OTHERS' : 'RECEIVE_ALL_MESSAGES');
      if (mode === 'RECEIVE_MESSAGES_FROM_OTHERS' && from === s.client) continue;
      const event: SubscriptionMessageLike = msg.jsonMessage
        ? { jsonMessage: { message: structuredClone(msg.jsonMessage.message), context: { topic } } }
        : { binaryMessage: { message: msg.binaryMessage?.message ?? '', context: { topic } } };
      s.emit(event);
    }
  }

  /** Publish from "another component". */
  inject(topic: string, message: unknown): void {
    this.route(undefined, topic, { jsonMessage: { message } });
  }

  configChanged(keyPath: string[]): void {
    for (const c of this.clients) for (const s of c.streams) if (s.kind === 'subscribeToConfigurationUpdate' && s.live) s.emit({ configurationUpdateEvent: { componentName: this.componentName, keyPath } });
  }

  /** A deployment proposes `configuration` (this component's whole new configuration) for validation. */
  proposeConfiguration(deploymentId: string, configuration: Record<string, unknown>): void {
    for (const c of this.clients) {
      for (const s of c.streams) if (s.kind === 'subscribeToValidateConfigurationUpdates' && s.live) s.emit({ validateConfigurationUpdateEvent: { deploymentId, configuration: structuredClone(configuration) } });
    }
  }

  preUpdate(deploymentId: string): void {
    for (const c of this.clients) for (const s of c.streams) if (s.kind === 'subscribeToComponentUpdates' && s.live) s.emit({ preUpdateEvent: { deploymentId, isGgcRestarting: false } });
  }

  /** Drop the current connection. */
  dropLink(): void {
    this.current?.dropLink();
  }
}
