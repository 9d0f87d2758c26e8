/**
 * Modeled IPC errors: what an operation handler throws to answer with an error shape.
 *
 * Wire form follows Java `OperationContinuationHandler.sendModeledError` and
 * `EventStreamOperationError.java` (docs/local-runtime.md "Errors"): ApplicationError,
 * TerminateStream, `service-model-type: aws.greengrass#<Shape>`, payload
 * `{"_service":"aws.greengrass#GreengrassCoreIPC","_message":m,"_errorCode":shape,"message":m,...fields}`.
 * The JS client exposes that payload as `RpcError.serviceError`, but only for shapes declared for
 * the operation; any other shape reaches JS as an InternalError.
 */
import { SERVICE_ID, SERVICE_NAMESPACE } from './rpc';

/** Keys the envelope owns; fields with these names are dropped rather than allowed to clash. */
const RESERVED_KEYS = new Set(['_service', '_message', '_errorCode', 'message']);

export class IpcError extends Error {
  /** Bare shape name, e.g. `UnauthorizedError` (an `aws.greengrass#` prefix is accepted and stripped). */
  readonly shape: string;
  readonly fields: Readonly<Record<string, unknown>>;

  constructor(shape: string, message: string, fields: Record<string, unknown> = {}) {
    super(message);
    this.name = 'IpcError';
    this.shape = shape.startsWith(SERVICE_NAMESPACE) ? shape.slice(SERVICE_NAMESPACE.length) : shape;
    this.fields = { ...fields };
  }

  /** `aws.greengrass#<Shape>`, the `service-model-type` header value. */
  get shapeId(): string {
    return SERVICE_NAMESPACE + this.shape;
  }

  /** The JSON body Java sends for this error. */
  toPayload(): Record<string, unknown> {
    const body: Record<string, unknown> = {
      _service: SERVICE_ID,
      _message: this.message,
      _errorCode: this.shape,
      message: this.message,
    };
    for (const [k, v] of Object.entries(this.fields)) {
      if (!RESERVED_KEYS.has(k) && v !== undefined) body[k] = v;
    }
    return body;
  }
}

/** `DefaultOperationHandler.java`: what Greengrass answers for an operation it has no handler for. */
export function unsupportedOperation(operation: string): IpcError {
  return new IpcError('ServiceError', `Operation ${operation} is not supported by Greengrass`);
}
