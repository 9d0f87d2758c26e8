/**
 * The subset of `aws-iot-device-sdk-v2`'s `greengrasscoreipc.Client` that our components use,
 * written structurally so that
 *  - the real client (created only in a component's main.ts) is assignable to it unchanged, and
 *  - unit tests substitute an in-memory fake (components/lib/testing/fake-ipc.ts).
 *
 * Field names and shapes follow the JS SDK 1.28.0 model (greengrasscoreipc/model.d.ts) and the
 * nucleus's IPC operations as the Greengrass Developer Guide's IPC pages describe them
 * (docs/local-runtime.md "IPC"). Nothing here imports the SDK at runtime: the SDK loads the
 * aws-crt native binary, which unit tests must not need.
 */
import { ErrorCode, FatalError, TransientError, errorMessage } from './errors';

/** SDK `ReceiveMode` enum values (strings on the wire). */
export type ReceiveMode = 'RECEIVE_ALL_MESSAGES' | 'RECEIVE_MESSAGES_FROM_OTHERS';
/** SDK `QOS` enum values: "0" AT_MOST_ONCE, "1" AT_LEAST_ONCE. */
export type IpcQos = '0' | '1';
/** SDK `ReportedLifecycleState`. */
export type ReportedState = 'RUNNING' | 'ERRORED';
/** What the SDK accepts as a blob (aws-crt eventstream `Payload`). */
export type IpcPayload = string | ArrayBuffer | ArrayBufferView;

export interface MessageContextLike {
  topic?: string;
}
export interface SubscriptionMessageLike {
  jsonMessage?: { message?: unknown; context?: MessageContextLike };
  binaryMessage?: { message?: IpcPayload; context?: MessageContextLike };
}
export interface ConfigurationUpdateEventsLike {
  configurationUpdateEvent?: { componentName: string; keyPath: string[] };
}
export interface ValidateConfigurationUpdateEventsLike {
  validateConfigurationUpdateEvent?: { configuration?: unknown; deploymentId: string };
}
/** SDK `ConfigurationValidityStatus`. */
export type ValidityStatus = 'ACCEPTED' | 'REJECTED';
export interface ComponentUpdatePolicyEventsLike {
  preUpdateEvent?: { deploymentId: string; isGgcRestarting: boolean };
  postUpdateEvent?: { deploymentId: string };
}

/**
 * An SDK `StreamingOperation`: register listeners, then `activate()` (resolves with the response,
 * after which events flow; the nucleus sends none before the response), and `close()` when done.
 */
export interface StreamLike<E> {
  on(event: 'message', listener: (message: E) => void): unknown;
  on(event: 'streamError', listener: (error: Error) => void): unknown;
  on(event: 'ended', listener: (event: unknown) => void): unknown;
  activate(): Promise<unknown>;
  close(): Promise<void>;
}

export interface IpcClientLike {
  /** May be called once per client; a reconnect needs a fresh client. */
  connect(): Promise<void>;
  close(): Promise<void>;
  on(event: 'disconnection', listener: (event?: { reason?: unknown }) => void): unknown;

  publishToTopic(request: {
    topic: string;
    publishMessage: { jsonMessage?: { message?: unknown }; binaryMessage?: { message?: IpcPayload } };
  }): Promise<unknown>;
  subscribeToTopic(request: { topic: string; receiveMode?: ReceiveMode }): StreamLike<SubscriptionMessageLike>;
  publishToIoTCore(request: { topicName: string; qos: IpcQos; payload?: IpcPayload; retain?: boolean; contentType?: string }): Promise<unknown>;
  getConfiguration(request: { componentName?: string; keyPath: string[] }): Promise<{ componentName?: string; value?: unknown }>;
  subscribeToConfigurationUpdate(request: { componentName?: string; keyPath: string[] }): StreamLike<ConfigurationUpdateEventsLike>;
  subscribeToValidateConfigurationUpdates(request: Record<string, never>): StreamLike<ValidateConfigurationUpdateEventsLike>;
  sendConfigurationValidityReport(request: { configurationValidityReport: { status: ValidityStatus; deploymentId: string; message?: string } }): Promise<unknown>;
  updateState(request: { state: ReportedState }): Promise<unknown>;
  subscribeToComponentUpdates(request: Record<string, never>): StreamLike<ComponentUpdatePolicyEventsLike>;
  deferComponentUpdate(request: { deploymentId: string; message?: string; recheckAfterMs?: number }): Promise<unknown>;
  /**
   * The secret manager component's GetSecretValue (SDK `GetSecretValueRequest` /
   * `GetSecretValueResponse`; service `aws.greengrass.SecretManager`, resource the secret id as
   * requested). `versionStage` of the response is the list of the version's staging labels.
   */
  getSecretValue(request: { secretId: string; versionId?: string; versionStage?: string; refresh?: boolean }): Promise<GetSecretValueResponseLike>;
}

/** SDK `GetSecretValueResponse`: `secretValue` is a union, exactly one of its members is set. */
export interface GetSecretValueResponseLike {
  secretId: string;
  versionId: string;
  versionStage: string[];
  secretValue: { secretString?: string; secretBinary?: IpcPayload };
}

/** Makes a fresh, unconnected client (the SDK's `connect()` may be called only once per client). */
export type IpcClientFactory = () => IpcClientLike;

/** SDK `RpcErrorType` numbers (aws-iot-device-sdk-v2 eventstream_rpc.d.ts). */
const RPC_CLIENT_STATE = 4;
const RPC_NETWORK = 5;
const RPC_INTERRUPTION = 6;
const RPC_VALIDATION = 7;

function rpcType(err: unknown): number | undefined {
  const t = typeof err === 'object' && err !== null ? (err as { type?: unknown }).type : undefined;
  return typeof t === 'number' ? t : undefined;
}

function serviceErrorCode(err: unknown): string | undefined {
  const se = typeof err === 'object' && err !== null ? (err as { serviceError?: unknown }).serviceError : undefined;
  if (typeof se !== 'object' || se === null) return undefined;
  const code = (se as { _errorCode?: unknown })._errorCode;
  return typeof code === 'string' ? code : undefined;
}

function serviceErrorMessage(err: unknown): string {
  const se = typeof err === 'object' && err !== null ? (err as { serviceError?: unknown }).serviceError : undefined;
  const m = typeof se === 'object' && se !== null ? (se as { message?: unknown }).message : undefined;
  return typeof m === 'string' ? m : errorMessage(err);
}

/** True when the error means the connection itself is gone (so the bus must reconnect). */
export function isConnectionError(err: unknown): boolean {
  const t = rpcType(err);
  return t === RPC_CLIENT_STATE || t === RPC_NETWORK || t === RPC_INTERRUPTION || (err instanceof TransientError && err.code === ErrorCode.IPC_DISCONNECTED);
}

/**
 * Map an error thrown by the SDK client into the catalogue. An UnauthorizedError means the
 * recipe's accessControl does not match what the code does: a deployment defect, so fatal
 * (the nucleus answers "Principal <c> is not authorized to perform ..."; AuthorizationHandler.java;
 * the JS client exposes the nucleus's `_errorCode` on `serviceError`).
 */
export function classifyIpcError(err: unknown, operation: string): TransientError | FatalError {
  if (err instanceof TransientError || err instanceof FatalError) return err;
  const code = serviceErrorCode(err);
  const msg = serviceErrorMessage(err);
  if (code === 'UnauthorizedError' || /not authori[sz]ed/i.test(msg)) {
    return new FatalError(ErrorCode.IPC_UNAUTHORIZED, `${operation} was denied by the nucleus: ${msg} (check the recipe's accessControl)`, { cause: err });
  }
  if (rpcType(err) === RPC_VALIDATION) {
    return new FatalError(ErrorCode.INVARIANT, `${operation} request failed client-side validation: ${msg}`, { cause: err });
  }
  if (isConnectionError(err)) {
    return new TransientError(ErrorCode.IPC_DISCONNECTED, `${operation} failed: IPC connection lost (${msg})`, { cause: err });
  }
  return new TransientError(ErrorCode.IPC_CALL_FAILED, `${operation} failed: ${msg}`, { cause: err, details: code ? { serviceError: code } : undefined });
}
