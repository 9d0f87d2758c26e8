/**
 * The bus's public surface (implementation in bus.ts). Components and tests depend on this
 * interface; only runComponent constructs the real thing.
 */
import type { ConnectionState, IotTopic, Topic, TopicFilter } from './contract';
import type { MessageHandler } from './bus-dispatch';
import type { ReceiveMode, ReportedState } from './ipc';

export type { MessageHandler } from './bus-dispatch';

export interface Subscription {
  close(): Promise<void>;
}

export type ComponentUpdateEvent = { kind: 'pre'; deploymentId: string; isGgcRestarting: boolean } | { kind: 'post'; deploymentId: string };

/** A deployment's proposed configuration for this component (SubscribeToValidateConfigurationUpdates). */
export interface ValidationEvent {
  deploymentId: string;
  /** The component's whole proposed configuration. */
  configuration: unknown;
}

/**
 * A secret of the secret manager component (GetSecretValue): the string or the bytes it holds,
 * exactly one of them. Never log it.
 */
export interface SecretValue {
  secretId: string;
  versionId: string;
  versionStage: string[];
  secretString?: string;
  secretBinary?: Uint8Array;
}

/** `sent`: the nucleus accepted it. `queued`: held until the connection is back. */
export type PublishOutcome = 'sent' | 'queued';

export interface Bus {
  readonly state: ConnectionState;
  /** Alarm and control messages dropped because their own queue overflowed (see bus.ts). */
  readonly criticalDropped: number;
  /** First connection. Rejects (TransientError / FatalError) if it cannot be made. */
  connect(): Promise<void>;
  /** Typed by the topic: `topics.x(...)` brands the topic with its payload type. */
  publish<P extends object>(topic: Topic<P>, payload: P): Promise<PublishOutcome>;
  /** JSON payloads are serialised; bytes are sent as they are. IoT Core limits a payload to 128 KiB. */
  publishToIoTCore<P extends object>(topic: IotTopic<P>, payload: P | Uint8Array, qos: 0 | 1, opts?: { retain?: boolean; contentType?: string }): Promise<PublishOutcome>;
  /**
   * Subscribe with a contract filter; each message is validated with the filter's validator before
   * the handler sees it. Resolves once the nucleus accepted the subscription (or at once while
   * disconnected: it is activated on reconnect).
   */
  subscribe<P>(filter: TopicFilter<P>, handler: MessageHandler<P>, opts?: { receiveMode?: ReceiveMode }): Promise<Subscription>;
  /** GetConfiguration; keyPath [] is the whole configuration. Returns the response `value`. */
  getConfiguration(keyPath?: readonly string[], componentName?: string): Promise<unknown>;
  subscribeToConfigurationUpdate(handler: (keyPath: string[]) => void, keyPath?: readonly string[]): Promise<Subscription>;
  /** Deployments ask this component to check a proposed configuration before they apply it. */
  subscribeToValidateConfigurationUpdates(handler: (event: ValidationEvent) => void): Promise<Subscription>;
  /** The answer to a ValidationEvent: a rejection fails the deployment (and a cloud deployment rolls back). */
  sendConfigurationValidityReport(deploymentId: string, accepted: boolean, message?: string): Promise<void>;
  updateState(state: ReportedState): Promise<void>;
  subscribeToComponentUpdates(handler: (event: ComponentUpdateEvent) => void): Promise<Subscription>;
  deferComponentUpdate(deploymentId: string, recheckAfterMs: number, message?: string): Promise<void>;
  /**
   * GetSecretValue (the secret manager component, aws.greengrass.SecretManager): one call with the
   * bus's call timeout, no retry. Without `versionId`/`versionStage` the current version
   * (AWSCURRENT). Rejects with a FatalError IPC_UNAUTHORIZED when the component has no policy for
   * the secret, a TransientError otherwise (not found: `details.serviceError` ResourceNotFoundError).
   */
  getSecretValue(secretId: string, opts?: { versionId?: string; versionStage?: string; refresh?: boolean }): Promise<SecretValue>;
  /** Idempotent: closes every stream and the client, drops what is queued. */
  close(): Promise<void>;
}
