/**
 * Server side of one operation call (one RPC stream id).
 *
 * Greengrass ordering (docs/local-runtime.md "Streams"): the operation's response is the first
 * message on the stream and events may only follow it. An event that reaches the JS client
 * first breaks the activation, so Java holds events back until the response is out
 * (`MqttProxyIPCAgent`, ConfigStore `afterHandleRequest`); `ServerStream` does the same.
 */
import type { Logger } from '../../../components/lib/logger';
import { FrameError, type Message } from './codec';
import { IpcError } from './errors';
import { applicationJson, MessageType } from './rpc';
import type { IpcEventStream } from './types';

/** What a stream needs from its connection. */
export interface StreamSink {
  readonly logger: Logger;
  /** Encode a message; throws FrameError if it exceeds the maximum message size. */
  encode(msg: Message): Buffer;
  /** Write an encoded frame (dropped if the connection is gone). */
  writeFrame(frame: Buffer): void;
  /** Account bytes held back before the response, so they count against the outbound bound. */
  adjustHeld(delta: number): void;
  /** The stream is finished: forget its id. */
  streamEnded(streamId: number): void;
}

/** Common shape of the entries a connection keeps per open stream id. */
export interface StreamEntry {
  /** The client sent TerminateStream: unsubscribe, send nothing. */
  clientTerminated(): void;
  /** The connection is gone: drop without sending. */
  connectionLost(): void;
}

/** The modeled error message for a server-side close or failure (docs/local-runtime.md "Errors"). */
export function errorMessage(streamId: number, err: IpcError): Message {
  const body = Buffer.from(JSON.stringify(err.toPayload()), 'utf8');
  return applicationJson(streamId, err.shapeId, body, true, MessageType.ApplicationError);
}

type Phase = 'awaiting-response' | 'open' | 'ended';

export class ServerStream implements IpcEventStream, StreamEntry {
  private phase: Phase = 'awaiting-response';
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** close() called before the response: sent after the response and the held events. */
  private deferredClose: IpcError | undefined;
  private readonly callbacks: Array<() => void> = [];

  constructor(
    readonly streamId: number,
    private readonly operation: string,
    private readonly sink: StreamSink,
  ) {}

  get closed(): boolean {
    return this.phase === 'ended' || this.deferredClose !== undefined;
  }

  send(eventShape: string, event: object): void {
    if (this.closed) {
      this.sink.logger.debug('event dropped: stream closed', { streamId: this.streamId, eventShape });
      return;
    }
    const body = Buffer.from(JSON.stringify(event), 'utf8');
    let frame: Buffer;
    try {
      frame = this.sink.encode(applicationJson(this.streamId, eventShape, body, false));
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      // Dropping the event silently would lose data unnoticed; closing tells the subscriber.
      this.sink.logger.error('event too large for the stream; closing it', {
        streamId: this.streamId,
        operation: this.operation,
        eventShape,
        bytes: body.length,
        err,
      });
      this.close(new IpcError('ServiceError', `Event of ${body.length} bytes exceeds the maximum message size`));
      return;
    }
    if (this.phase === 'awaiting-response') {
      this.held.push(frame);
      this.heldBytes += frame.length;
      this.sink.adjustHeld(frame.length);
    } else {
      this.sink.writeFrame(frame);
    }
  }

  close(error?: IpcError): void {
    if (this.closed) return;
    const err = error ?? new IpcError('ServiceError', 'Stream closed by the server');
    if (this.phase === 'awaiting-response') {
      this.deferredClose = err;
      return;
    }
    this.sink.writeFrame(this.sink.encode(errorMessage(this.streamId, err)));
    this.end();
  }

  onClose(cb: () => void): void {
    if (this.phase === 'ended') {
      this.runCallback(cb);
      return;
    }
    this.callbacks.push(cb);
  }

  /** The handler returned: write the response (flags 0), then held events, then a deferred close. */
  activate(response: Buffer): void {
    if (this.phase !== 'awaiting-response') return;
    this.phase = 'open';
    this.sink.writeFrame(response);
    const held = this.held;
    this.releaseHeld();
    for (const frame of held) this.sink.writeFrame(frame);
    const pendingClose = this.deferredClose;
    if (pendingClose) {
      this.deferredClose = undefined;
      this.close(pendingClose);
    }
  }

  /** The handler failed: the error replaces the response; held events are dropped. */
  fail(err: IpcError): void {
    if (this.phase === 'ended') return;
    this.sink.writeFrame(this.sink.encode(errorMessage(this.streamId, err)));
    this.end();
  }

  clientTerminated(): void {
    this.end();
  }

  connectionLost(): void {
    this.end();
  }

  private releaseHeld(): void {
    if (this.heldBytes > 0) this.sink.adjustHeld(-this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
  }

  private end(): void {
    if (this.phase === 'ended') return;
    this.phase = 'ended';
    this.deferredClose = undefined;
    this.releaseHeld();
    this.sink.streamEnded(this.streamId);
    const cbs = this.callbacks.splice(0);
    for (const cb of cbs) this.runCallback(cb);
  }

  private runCallback(cb: () => void): void {
    try {
      cb();
    } catch (err) {
      // An unsubscribe hook that throws must not break the connection's bookkeeping.
      this.sink.logger.error('stream onClose callback threw', { streamId: this.streamId, operation: this.operation, err });
    }
  }
}

/** A request/response call in flight; only tracks whether the answer is still wanted. */
export class UnaryCall implements StreamEntry {
  private done = false;
  constructor(
    private readonly streamId: number,
    private readonly sink: StreamSink,
  ) {}

  /** True once the answer must not be sent (client terminated, connection lost, or answered). */
  get finished(): boolean {
    return this.done;
  }

  /** Send the response or error (TerminateStream) and forget the stream id. */
  answer(frame: Buffer): void {
    if (this.done) return;
    this.finish();
    this.sink.writeFrame(frame);
  }

  clientTerminated(): void {
    this.finish();
  }

  connectionLost(): void {
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.sink.streamEnded(this.streamId);
  }
}
