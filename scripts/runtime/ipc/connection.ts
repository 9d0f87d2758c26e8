/**
 * One client connection of the IPC server: Connect handshake, message routing and stream-id
 * bookkeeping, connection-level errors, output bounds. Operation calls are run by ./calls.ts.
 *
 * Behaviour follows aws-c-event-stream `event_stream_rpc_server.c` (message routing, stream ids,
 * connection-level errors) and the Greengrass Java server (`ipc/IPCEventStreamService.java`,
 * `OperationContinuationHandler.java`); docs/local-runtime.md "The IPC wire protocol". Quoted
 * section names below are that page's.
 */
import type net from 'node:net';
import type { Logger } from '../../../components/lib/logger';
import { encodeMessage, FrameDecoder, type Message } from './codec';
import { startOperation, type CallHost } from './calls';
import {
  connectAck,
  connectionError,
  MessageFlags,
  MessageType,
  pingResponse,
  readRpcMeta,
  type RpcMeta,
} from './rpc';
import { checkConnect } from './handshake';
import type { StreamEntry } from './stream';
import type { IpcCaller, OperationDef } from './types';

/** Counters shared by all connections of one server. */
export interface TransportCounters {
  framesIn: number;
  framesOut: number;
  protocolErrors: number;
}

export interface ConnectionContext {
  readonly id: number;
  readonly operations: Readonly<Record<string, OperationDef>>;
  authenticate(token: string): string | undefined;
  readonly logger: Logger;
  readonly maxMessageBytes: number;
  readonly maxOutboundBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly counters: TransportCounters;
  /** Called once, when the socket has closed. */
  onClosed(conn: Connection): void;
}

/** After a graceful end, how long the peer gets to close its side before the socket is destroyed. */
const END_GRACE_MS = 2000;
/**
 * After a rejecting ConnectAck, how long the client gets to hang up itself. Closing at once races
 * the JS client: its "connection closed" path can win over its ConnectAck check and report a
 * NetworkError instead of the HandshakeError it reports when it closes first.
 */
const REJECT_LINGER_MS = 1000;

type State = 'handshake' | 'open' | 'closing' | 'closed';

export class Connection implements CallHost {
  private state: State = 'handshake';
  private componentName: string | undefined;
  private lastStreamId = 0;
  private readonly streams = new Map<number, StreamEntry>();
  private readonly decoder: FrameDecoder;
  private heldBytes = 0;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private resolveClosed: () => void = () => undefined;
  /** Settles once the socket has closed and every stream has been dropped. */
  readonly whenClosed = new Promise<void>((resolve) => {
    this.resolveClosed = resolve;
  });
  logger: Logger;

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: ConnectionContext,
  ) {
    this.logger = ctx.logger.child({ connectionId: ctx.id });
    this.decoder = new FrameDecoder({ maxMessageBytes: ctx.maxMessageBytes });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.logger.debug('socket error', { err }));
    socket.on('close', () => this.onSocketClose());
    this.handshakeTimer = setTimeout(() => {
      if (this.state !== 'handshake') return;
      this.logger.warn('no Connect within the handshake timeout; closing', { timeoutMs: ctx.handshakeTimeoutMs });
      this.destroy();
    }, ctx.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  get id(): number {
    return this.ctx.id;
  }

  /** The authenticated component, once the handshake has succeeded. */
  get component(): string | undefined {
    return this.componentName;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /** Graceful close: flush what is queued, send FIN, destroy if the peer lingers. */
  end(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.dropStreams();
    this.shutdown();
  }

  /** Flush and send FIN; destroy if the peer has not closed its side within the grace time. */
  private shutdown(): void {
    if (this.state === 'closed') return;
    clearTimeout(this.graceTimer);
    this.socket.end();
    this.graceTimer = setTimeout(() => this.socket.destroy(), END_GRACE_MS);
    this.graceTimer.unref();
  }

  /** Immediate close; queued output is discarded. */
  destroy(): void {
    if (this.state === 'closed') return;
    if (this.state !== 'closing') this.state = 'closing';
    this.dropStreams();
    this.socket.destroy();
  }

  // --- StreamSink -----------------------------------------------------------------------------

  encode(msg: Message): Buffer {
    return encodeMessage(msg, this.ctx.maxMessageBytes);
  }

  writeFrame(frame: Buffer): void {
    if (this.state === 'closed' || this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(frame);
    this.ctx.counters.framesOut++;
    this.checkOutbound();
  }

  adjustHeld(delta: number): void {
    this.heldBytes += delta;
    if (delta > 0) this.checkOutbound();
  }

  streamEnded(streamId: number): void {
    this.streams.delete(streamId);
  }

  // --- CallHost -------------------------------------------------------------------------------

  track(streamId: number, entry: StreamEntry): void {
    this.streams.set(streamId, entry);
  }

  // --- inbound --------------------------------------------------------------------------------

  /** Still reading and answering (not closing or closed). Re-read after anything that may close. */
  private isLive(): boolean {
    return this.state === 'handshake' || this.state === 'open';
  }

  private onData(chunk: Buffer): void {
    if (!this.isLive()) return;
    let frames: Message[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      // No frame marker to resynchronise on: the byte stream is lost ("Framing": close on a CRC error).
      this.ctx.counters.protocolErrors++;
      this.logger.warn('framing error; closing connection', { err });
      this.destroy();
      return;
    }
    for (const frame of frames) {
      if (!this.isLive()) return;
      this.ctx.counters.framesIn++;
      try {
        this.dispatch(frame);
      } catch (err) {
        // A bug here must cost one connection, never the server.
        this.logger.error('internal error handling a message; closing connection', { err });
        this.sendConnectionError('An internal error occurred', MessageType.InternalError);
      }
    }
  }

  private dispatch(msg: Message): void {
    const meta = readRpcMeta(msg);
    if (typeof meta === 'string') return this.protocolError(meta);
    if (this.state === 'handshake') {
      if (meta.type !== MessageType.Connect) {
        return this.protocolError('Connection handshake not completed: the first message must be Connect');
      }
      return this.handleConnect(msg, meta);
    }
    if (meta.streamId !== 0 || meta.type === MessageType.ApplicationMessage || meta.type === MessageType.ApplicationError) {
      return this.handleStreamMessage(msg, meta);
    }
    switch (meta.type) {
      case MessageType.Ping:
        this.writeFrame(this.encode(pingResponse(msg)));
        return;
      case MessageType.PingResponse:
        return;
      case MessageType.Connect:
        return this.protocolError('Connect received but the handshake is already completed');
      case MessageType.ProtocolError:
      case MessageType.InternalError:
        this.logger.warn('client reported a connection-level error; closing', {
          type: meta.type,
          payload: msg.payload.subarray(0, 512).toString('utf8'),
        });
        return this.end();
      default:
        return this.protocolError(`Invalid message type ${meta.type} on stream 0`);
    }
  }

  /** "Connect handshake": check `:version` and the authToken, then ConnectAck (accept, or reject and close). */
  private handleConnect(msg: Message, meta: RpcMeta): void {
    if (meta.streamId !== 0) return this.protocolError('Connect must be sent on stream 0');
    clearTimeout(this.handshakeTimer);
    const verdict = checkConnect(msg, this.ctx.authenticate, this.logger);
    if (!verdict.ok) return this.reject(verdict.reason);
    const name = verdict.componentName;
    this.componentName = name;
    this.state = 'open';
    this.logger = this.ctx.logger.child({ connectionId: this.ctx.id, component: name });
    this.writeFrame(this.encode(connectAck(true)));
    this.logger.info('IPC client connected');
  }

  private reject(reason: string): void {
    this.logger.warn('IPC connection rejected', { reason });
    this.writeFrame(this.encode(connectAck(false)));
    this.state = 'closing';
    this.graceTimer = setTimeout(() => this.shutdown(), REJECT_LINGER_MS);
    this.graceTimer.unref();
  }

  /** Routing by stream id, as `s_route_message_by_type` in the C server ("Streams"). */
  private handleStreamMessage(msg: Message, meta: RpcMeta): void {
    if (meta.type > MessageType.ApplicationError || meta.streamId <= 0) {
      return this.protocolError(`Invalid stream id ${meta.streamId} for message type ${meta.type}`);
    }
    const terminate = (meta.flags & MessageFlags.TerminateStream) !== 0;
    if (meta.streamId <= this.lastStreamId) {
      const entry = this.streams.get(meta.streamId);
      if (!entry) {
        // A TerminateStream racing our own end of the stream is normal; anything else is not.
        if (terminate) return;
        return this.protocolError(`No open stream with id ${meta.streamId}`);
      }
      if (terminate) {
        this.logger.debug('client closed stream', { streamId: meta.streamId });
        entry.clientTerminated();
      } else {
        // No Greengrass operation streams from client to server; Java's default handler ignores these too.
        this.logger.debug('ignoring client message on an open stream', { streamId: meta.streamId });
      }
      return;
    }
    if (meta.streamId !== this.lastStreamId + 1) {
      return this.protocolError(`Stream id ${meta.streamId} is not sequential (expected ${this.lastStreamId + 1})`);
    }
    if (meta.operation === undefined || meta.operation === '') {
      return this.protocolError('The first message on a new stream must carry an operation header');
    }
    this.lastStreamId = meta.streamId;
    const caller: IpcCaller = { componentName: this.componentName ?? '', connectionId: this.ctx.id };
    startOperation(this, this.ctx.operations, caller, meta.streamId, meta.operation, msg.payload);
    // A request that also terminates (the C server closes the continuation right after delivering
    // it): the handler still runs, its answer is not sent.
    if (terminate) this.streams.get(meta.streamId)?.clientTerminated();
  }

  // --- errors and teardown --------------------------------------------------------------------

  /** Last-resort catch for the async operation paths: never an unhandled rejection. */
  internalFailure(err: unknown): void {
    this.logger.error('internal error in an operation call; closing connection', { err });
    if (this.isLive()) {
      this.sendConnectionError('An internal error occurred', MessageType.InternalError);
    }
  }

  private protocolError(text: string): void {
    this.ctx.counters.protocolErrors++;
    this.logger.warn('protocol error; closing connection', { reason: text });
    this.sendConnectionError(text, MessageType.ProtocolError);
  }

  private sendConnectionError(text: string, type: number): void {
    try {
      this.writeFrame(this.encode(connectionError(text, type)));
    } finally {
      this.end();
    }
  }

  /**
   * Bound memory per connection: a reader that stopped reading (or a flood of events before a
   * response) must not grow our buffers without limit. Close it and tell the log why.
   */
  private checkOutbound(): void {
    const pending = this.socket.writableLength + this.heldBytes;
    if (pending <= this.ctx.maxOutboundBytes || this.state === 'closed') return;
    this.logger.error('outbound buffer limit exceeded; closing connection', {
      pendingBytes: pending,
      limitBytes: this.ctx.maxOutboundBytes,
    });
    this.destroy();
  }

  private dropStreams(): void {
    const entries = [...this.streams.values()];
    this.streams.clear();
    for (const e of entries) e.connectionLost();
  }

  private onSocketClose(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.graceTimer);
    this.dropStreams();
    this.logger.info('IPC client disconnected', { component: this.componentName });
    this.ctx.onClosed(this);
    this.resolveClosed();
  }
}
