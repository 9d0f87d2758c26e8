/**
 * Running one operation call: look up the handler, parse the request, call the handler, and
 * answer with the response or an error on the call's stream.
 *
 * Follows the Java server (`OperationContinuationHandler.java`, `ipc/common/ExceptionUtil.java`,
 * `ipc/common/DefaultOperationHandler.java`); docs/local-runtime.md "Streams", "Errors", "JSON
 * bodies".
 */
import { IpcError, unsupportedOperation } from './errors';
import { applicationJson, isJsonObject, unmodeledError } from './rpc';
import { errorMessage, ServerStream, UnaryCall, type StreamEntry, type StreamSink } from './stream';
import type { IpcCaller, OperationDef, StreamHandler, UnaryHandler } from './types';

/** What a call needs from its connection, beyond what a stream needs. */
export interface CallHost extends StreamSink {
  /** Register an open stream id, so TerminateStream and connection loss reach it. */
  track(streamId: number, entry: StreamEntry): void;
  /** A bug escaped a call: close the connection, never crash the server. */
  internalFailure(err: unknown): void;
}

export function startOperation(
  host: CallHost,
  operations: Readonly<Record<string, OperationDef>>,
  caller: IpcCaller,
  streamId: number,
  operation: string,
  payload: Buffer,
): void {
  // hasOwnProperty: an operation named `constructor` or `__proto__` must not find Object's members.
  const def = Object.prototype.hasOwnProperty.call(operations, operation) ? operations[operation] : undefined;
  if (!def) {
    host.logger.info('unsupported operation', { operation, streamId });
    host.writeFrame(host.encode(errorMessage(streamId, unsupportedOperation(operation))));
    return;
  }
  let request: unknown;
  try {
    // The JS client always sends a JSON object; tolerate an empty body as `{}`.
    request = payload.length === 0 ? {} : JSON.parse(payload.toString('utf8'));
  } catch {
    request = undefined;
  }
  if (!isJsonObject(request)) {
    // Java fails to deserialize (Gson) before any handler runs: the unmodeled catch-all ("Errors").
    host.logger.warn('request payload is not a JSON object', { operation, streamId, bytes: payload.length });
    host.writeFrame(host.encode(unmodeledError(streamId)));
    return;
  }
  if (def.kind === 'unary') {
    const call = new UnaryCall(streamId, host);
    host.track(streamId, call);
    runUnary(host, call, def.handler, caller, request, streamId, operation).catch((err) => host.internalFailure(err));
  } else {
    const stream = new ServerStream(streamId, operation, host);
    host.track(streamId, stream);
    runStream(host, stream, def.handler, caller, request, operation).catch((err) => host.internalFailure(err));
  }
}

async function runUnary(
  host: CallHost,
  call: UnaryCall,
  handler: UnaryHandler,
  caller: IpcCaller,
  request: Record<string, unknown>,
  streamId: number,
  operation: string,
): Promise<void> {
  let frame: Buffer;
  try {
    const result: unknown = await handler(caller, request);
    frame = responseFrame(host, streamId, operation, result, true);
  } catch (err) {
    frame = host.encode(errorMessage(streamId, toIpcError(host, err, operation)));
  }
  if (call.finished) {
    host.logger.debug('response dropped: stream closed before the handler returned', { streamId, operation });
    return;
  }
  call.answer(frame);
}

async function runStream(
  host: CallHost,
  stream: ServerStream,
  handler: StreamHandler,
  caller: IpcCaller,
  request: Record<string, unknown>,
  operation: string,
): Promise<void> {
  let frame: Buffer;
  try {
    const result: unknown = await handler(caller, request, stream);
    frame = responseFrame(host, stream.streamId, operation, result, false);
  } catch (err) {
    stream.fail(toIpcError(host, err, operation));
    return;
  }
  stream.activate(frame);
}

/**
 * "Streams": `service-model-type: <op>Response` and a JSON object body, never empty (an empty body
 * gives the JS caller a raw JSON.parse SyntaxError). Unary responses terminate the stream, as in
 * Java. Blobs must already be base64 strings ("JSON bodies"): a Buffer would serialise as
 * `{type, data}`.
 */
function responseFrame(host: CallHost, streamId: number, operation: string, result: unknown, terminate: boolean): Buffer {
  if (!isJsonObject(result)) {
    throw new Error(`handler for ${operation} returned ${result === null ? 'null' : typeof result}, not an object`);
  }
  const body = Buffer.from(JSON.stringify(result), 'utf8');
  return host.encode(applicationJson(streamId, `${operation}Response`, body, terminate));
}

/** `ipc/common/ExceptionUtil.java`: stray exceptions become a ServiceError with their message. */
function toIpcError(host: CallHost, err: unknown, operation: string): IpcError {
  if (err instanceof IpcError) return err;
  host.logger.error('operation handler failed', { operation, err });
  const message = err instanceof Error ? err.message : String(err);
  return new IpcError('ServiceError', message);
}
