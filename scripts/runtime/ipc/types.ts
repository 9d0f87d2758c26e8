/**
 * Public types of the IPC server (re-exported by ./server.ts). Kept apart so that the connection
 * and stream modules can import them without a cycle through server.ts.
 */
import type { Logger } from '../../../components/lib/logger';
import type { IpcError } from './errors';

export interface IpcCaller {
  readonly componentName: string;
  readonly connectionId: number;
}

export interface IpcEventStream {
  /**
   * Queue an event; events sent before the operation's response are held back until after it
   * (Greengrass ordering). Ignored once the stream is closed. An event larger than the maximum
   * message size closes the stream with a ServiceError (logged) instead of being sent.
   */
  send(eventShape: string, event: object): void;
  /**
   * Server-side close: ApplicationError + TerminateStream with the given error, or a ServiceError
   * if none (an empty TerminateStream, Java's `closeStream()`, gives JS a spurious InternalError).
   * Called before the response is out, the close is sent after the response and held events.
   */
  close(error?: IpcError): void;
  readonly closed: boolean;
  /** Called once when the stream ends for any reason (client close, server close, socket close). */
  onClose(cb: () => void): void;
}

export type UnaryHandler = (caller: IpcCaller, request: Record<string, unknown>) => object | Promise<object>;
export type StreamHandler = (
  caller: IpcCaller,
  request: Record<string, unknown>,
  stream: IpcEventStream,
) => object | Promise<object>;
export type OperationDef = { kind: 'unary'; handler: UnaryHandler } | { kind: 'stream'; handler: StreamHandler };

export interface IpcServerOptions {
  socketPath: string;
  /** Maps an authToken (SVCUID) to the component name, or undefined if unknown. */
  authenticate(token: string): string | undefined;
  /** Key: full operation name, e.g. 'aws.greengrass#PublishToTopic'. */
  operations: Record<string, OperationDef>;
  logger: Logger;
  /** Largest message accepted or sent; default 16 MiB, the limit of older aws-c-event-stream releases. */
  maxMessageBytes?: number;
  /** A connection whose unsent output exceeds this is closed (a stuck or dead reader); default 64 MiB. */
  maxOutboundBytes?: number;
  /** A connection that has not completed the Connect handshake by then is closed; default 10 s. */
  handshakeTimeoutMs?: number;
}

export interface IpcServerStats {
  connections: number;
  streams: number;
  framesIn: number;
  framesOut: number;
  protocolErrors: number;
}

export interface IpcServer {
  /** Unlinks a stale socket file, listens, chmod 0666. */
  listen(): Promise<void>;
  /** Closes all connections and the listener, removes the socket file; idempotent. */
  close(): Promise<void>;
  connectionCount(): number;
  /** Close every connection authenticated as this component (used when a component is stopped/removed). */
  disconnectComponent(componentName: string): void;
  stats(): IpcServerStats;
}
