/**
 * The local Greengrass IPC server: a Unix domain socket speaking event-stream RPC, which the
 * unmodified `aws-iot-device-sdk-v2` `greengrasscoreipc` client connects to.
 *
 * Transport per docs/local-runtime.md "Transport" (socket mode 0666 like the nucleus, stale file
 * removed first, `sun_path` under 108 bytes); per-connection protocol in ./connection.ts.
 * Operations are plugged in by name (`aws.greengrass#<Op>`); names without a handler answer
 * Greengrass's "not supported" ServiceError.
 */
import fs from 'node:fs';
import net from 'node:net';
import { DEFAULT_MAX_MESSAGE_BYTES } from './codec';
import { Connection, type TransportCounters } from './connection';
import type { IpcServer, IpcServerOptions, IpcServerStats } from './types';

export type {
  IpcCaller,
  IpcEventStream,
  IpcServer,
  IpcServerOptions,
  IpcServerStats,
  OperationDef,
  StreamHandler,
  UnaryHandler,
} from './types';
export { IpcError } from './errors';

export const DEFAULT_MAX_OUTBOUND_BYTES = 64 * 1024 * 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** `sizeof(sockaddr_un.sun_path)` on Linux, including the terminating NUL. */
const SUN_PATH_BYTES = 108;

export type IpcServerErrorCode = 'SOCKET_PATH_TOO_LONG' | 'SOCKET_PATH_NOT_SOCKET' | 'ALREADY_LISTENING' | 'CLOSED';

export class IpcServerError extends Error {
  readonly code: IpcServerErrorCode;
  constructor(code: IpcServerErrorCode, message: string) {
    super(message);
    this.name = 'IpcServerError';
    this.code = code;
  }
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number, got ${v}`);
  return v;
}

/** Remove a leftover socket file from a previous run; refuse to delete anything that is not a socket. */
function unlinkStaleSocket(socketPath: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) {
    throw new IpcServerError('SOCKET_PATH_NOT_SOCKET', `${socketPath} exists and is not a socket; not removing it`);
  }
  fs.unlinkSync(socketPath);
}

export function createIpcServer(options: IpcServerOptions): IpcServer {
  const { socketPath, logger } = options;
  if (Buffer.byteLength(socketPath, 'utf8') >= SUN_PATH_BYTES) {
    throw new IpcServerError('SOCKET_PATH_TOO_LONG', `socket path must be under ${SUN_PATH_BYTES} bytes: ${socketPath}`);
  }
  const maxMessageBytes = positive('maxMessageBytes', options.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES);
  const maxOutboundBytes = positive('maxOutboundBytes', options.maxOutboundBytes, DEFAULT_MAX_OUTBOUND_BYTES);
  const handshakeTimeoutMs = positive('handshakeTimeoutMs', options.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS);
  // Copy so later mutation by the caller cannot change what this server dispatches.
  const operations = Object.freeze({ ...options.operations });

  const counters: TransportCounters = { framesIn: 0, framesOut: 0, protocolErrors: 0 };
  const connections = new Set<Connection>();
  let nextConnectionId = 1;
  let listening = false;
  /** The socket file at socketPath is ours (listen succeeded). */
  let bound = false;
  let closePromise: Promise<void> | undefined;

  const server = net.createServer((socket) => {
    if (closePromise) {
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, {
      id: nextConnectionId++,
      operations,
      authenticate: options.authenticate,
      logger,
      maxMessageBytes,
      maxOutboundBytes,
      handshakeTimeoutMs,
      counters,
      onClosed: (c) => connections.delete(c),
    });
    connections.add(conn);
  });
  server.on('error', (err) => logger.error('IPC listener error', { err, socketPath }));

  const listen = async (): Promise<void> => {
    if (closePromise) throw new IpcServerError('CLOSED', 'IPC server is closed');
    if (listening) throw new IpcServerError('ALREADY_LISTENING', 'IPC server is already listening');
    listening = true;
    try {
      unlinkStaleSocket(socketPath);
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        server.once('error', onError);
        server.listen(socketPath, () => {
          server.off('error', onError);
          resolve();
        });
      });
      bound = true;
      // Components run as their own users on a real device; the nucleus makes the socket 0666.
      fs.chmodSync(socketPath, 0o666);
    } catch (err) {
      listening = false;
      if (server.listening) server.close();
      bound = false;
      throw err;
    }
    logger.info('IPC server listening', { socketPath });
  };

  const close = (): Promise<void> => {
    closePromise ??= (async () => {
      const closed = new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
      });
      const open = [...connections];
      for (const conn of open) conn.destroy();
      await Promise.all([closed, ...open.map((c) => c.whenClosed)]);
      if (!bound) return;
      // libuv usually unlinks the path itself; make sure, but only ever remove a socket.
      try {
        if (fs.lstatSync(socketPath).isSocket()) fs.unlinkSync(socketPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn('could not remove IPC socket', { err, socketPath });
      }
      logger.info('IPC server closed', { socketPath });
    })();
    return closePromise;
  };

  return {
    listen,
    close,
    connectionCount: () => connections.size,
    disconnectComponent(componentName: string): void {
      for (const conn of connections) {
        if (conn.component === componentName) {
          logger.info('disconnecting component', { component: componentName, connectionId: conn.id });
          conn.end();
        }
      }
    },
    stats(): IpcServerStats {
      let streams = 0;
      for (const conn of connections) streams += conn.streamCount;
      return { connections: connections.size, streams, ...counters };
    },
  };
}
