/**
 * The local Stream Manager's server: TCP on 127.0.0.1, the Stream Manager protocol 1.1.0
 * (./protocol.ts), the operations on the store (./store.ts) and the export runner (./exports.ts).
 * docs/stream-manager.md describes what it does and where it differs from AWS's component.
 *
 * Per connection: the connect byte and Connect request (authenticated with a component's token
 * unless authentication is off), then any number of requests in flight, each answered with its
 * requestId (a long-polling read does not hold up the requests behind it). Bad input is answered
 * with a status code, counted and logged at a limited rate; only a protocol violation (a frame
 * over the limit, a payload that is not CBOR) closes the connection, and never the server.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Logger } from '../../../components/lib/logger';
import { createLogLimiter } from '../../../components/lib/log-limit';
import { MAX_MILLIS, StreamDefinition, checkName, checkUpdate, definitionToWire, parseDefinition } from './definition';
import { ExportRunner, ExportRunnerOptions } from './exports';
import {
  CONNECT_VERSION,
  FrameDecoder,
  FrameTooLargeError,
  NAME_PATTERN,
  Op,
  RequestError,
  SUPPORTED_PROTOCOL_VERSIONS,
  Status,
  StatusCode,
  decodePayload,
  encodeFrame,
  salvageRequestId,
} from './protocol';
import { StreamStore } from './store';

export const SERVER_VERSION = '2.2.1';
/** Default ceiling of one frame: far below the protocol's 1 GiB, so a connection cannot make the runtime hold a gigabyte. */
export const DEFAULT_MAX_FRAME_BYTES = 32 * 1024 * 1024;
/** A client that does not read its answers is cut off beyond this much unsent data. */
const MAX_UNSENT_BYTES = 64 * 1024 * 1024;

export interface StreamManagerServerOptions {
  /** Store root (the component's work folder or STREAM_MANAGER_STORE_ROOT_DIR). */
  storeRoot: string;
  host?: string;
  port: number;
  /** STREAM_MANAGER_AUTHENTICATE_CLIENT. */
  authenticateClient: boolean;
  /** Maps a Connect authToken to the component it belongs to (the runtime's component tokens). */
  validateToken: (token: string) => string | undefined;
  exports: Omit<ExportRunnerOptions, 'log' | 'now' | 'env'> & { env: Omit<ExportRunnerOptions['env'], 'appendToStream' | 'log'> };
  log: Logger;
  now?: () => number;
  maxFrameBytes?: number;
  /** How often expired segments are looked for (default 10 s; TTL is at least 60 s). */
  ttlSweepMs?: number;
}

export interface StreamManagerStats {
  connections: number;
  requests: number;
  rejected: Record<string, number>;
  appended: number;
  expired: number;
}

export class StreamManagerServer extends EventEmitter {
  readonly store: StreamStore;
  readonly exports: ExportRunner;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly log: Logger;
  private readonly limited = createLogLimiter({ now: Date.now });
  private readonly now: () => number;
  private readonly maxFrameBytes: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private boundPort = 0;
  private readonly counters: StreamManagerStats = { connections: 0, requests: 0, rejected: {}, appended: 0, expired: 0 };

  constructor(private readonly o: StreamManagerServerOptions) {
    super();
    this.log = o.log;
    this.now = o.now ?? Date.now;
    this.maxFrameBytes = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.store = new StreamStore(o.storeRoot, this.log);
    this.exports = new ExportRunner({
      ...o.exports,
      log: this.log,
      now: this.now,
      env: {
        ...o.exports.env,
        appendToStream: (name, payload) => {
          const s = this.store.get(name);
          if (!s) return Promise.reject(new Error(`stream '${name}' does not exist`));
          try {
            const seq = s.append(payload, this.now());
            this.counters.appended += 1;
            return Promise.resolve(seq);
          } catch (err) {
            return Promise.reject(err instanceof Error ? err : new Error(String(err)));
          }
        },
        log: {
          info: (m, f) => this.log.info(m, f as Record<string, unknown>),
          warn: (m, f) => this.log.warn(m, f as Record<string, unknown>),
          error: (m, f) => this.log.error(m, f as Record<string, unknown>),
        },
      },
    });
    this.server = net.createServer((socket) => this.accept(socket));
  }

  get port(): number {
    return this.boundPort;
  }

  stats(): StreamManagerStats & { streams: number } {
    return { ...this.counters, rejected: { ...this.counters.rejected }, streams: this.store.streams.size };
  }

  /** Recovers the file streams, starts their exports and listens. */
  async start(): Promise<void> {
    this.store.recover();
    for (const s of this.store.streams.values()) {
      try {
        this.exports.attach(s, this.exports.prepare(s.definition));
      } catch (err) {
        this.log.error('Stream Manager: the exports of a recovered stream could not be started', { stream: s.name, err: err as Error });
      }
    }
    this.sweep();
    this.sweepTimer = setInterval(() => this.sweep(), this.o.ttlSweepMs ?? 10_000);
    this.sweepTimer.unref();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        this.boundPort = (this.server.address() as net.AddressInfo).port;
        resolve();
      });
    });
    this.server.on('error', (err) => this.log.error('Stream Manager: server error', { err }));
    this.log.info('Stream Manager listening', { port: this.boundPort, streams: this.store.streams.size, authenticateClient: this.o.authenticateClient });
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
    await this.exports.close();
    this.store.close();
    this.log.info('Stream Manager stopped');
  }

  /** Drops expired segments of streams with timeToLiveMillis (also called by tests with an injected clock). */
  sweep(): void {
    const now = this.now();
    for (const s of this.store.streams.values()) {
      try {
        const n = s.expire(now);
        if (n > 0) {
          this.counters.expired += n;
          this.log.debug('Stream Manager: expired messages removed', { stream: s.name, messages: n });
        }
      } catch (err) {
        this.log.error('Stream Manager: removing expired data failed', { stream: s.name, err: err as Error });
      }
    }
  }

  private reject(reason: string, fields: Record<string, unknown>): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
    this.limited(reason, (suppressed) => this.log.warn(`Stream Manager: ${reason}`, { ...fields, ...(suppressed ? { suppressed } : {}) }));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    this.counters.connections += 1;
    const decoder = new FrameDecoder(this.maxFrameBytes, true);
    const conn = { connected: false, client: '', cancels: new Set<() => void>() };
    const send = (op: number, body: Record<string, unknown>): void => {
      if (socket.destroyed) return;
      if (socket.writableLength > MAX_UNSENT_BYTES) {
        this.reject('client does not read its responses; connection closed', { client: conn.client, unsent: socket.writableLength });
        socket.destroy();
        return;
      }
      socket.write(encodeFrame(op, body));
    };
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.reject(err instanceof FrameTooLargeError ? 'frame over the limit; connection closed' : 'invalid frame header; connection closed', { client: conn.client, reason: (err as Error).message });
        socket.destroy();
        return;
      }
      for (const f of frames) {
        if (socket.destroyed) return;
        if (f.op === -1) {
          if (f.payload[0] !== CONNECT_VERSION) {
            this.reject('unsupported connect version; connection closed', { version: f.payload[0] });
            socket.write(Buffer.from([CONNECT_VERSION]));
            send(Op.ConnectResponse, { status: Status.UnsupportedConnectVersion, errorMessage: `connect version ${f.payload[0]} is not supported (only ${CONNECT_VERSION})` });
            socket.end();
            return;
          }
          socket.write(Buffer.from([CONNECT_VERSION]));
          continue;
        }
        let body: Record<string, unknown>;
        try {
          body = decodePayload(f.payload);
        } catch (err) {
          // The framing is intact, so the connection can go on; the request is answered if its id can be found.
          const requestId = conn.connected ? salvageRequestId(f.payload) : undefined;
          const responseOp = RESPONSE_OP[f.op];
          this.reject('request payload is not a CBOR map', { client: conn.client, op: f.op, bytes: f.payload.length, reason: (err as Error).message, answered: requestId !== undefined });
          if (requestId !== undefined && responseOp !== undefined) {
            send(responseOp, {
              requestId,
              status: Status.InvalidRequest,
              errorMessage: `the request's CBOR payload (${f.payload.length} bytes) does not decode: ${(err as Error).message} (a client encoding with cbor 5's encode() loses what follows once its output passes 16 KiB)`,
            });
          } else if (!conn.connected) {
            socket.destroy();
            return;
          }
          continue;
        }
        if (!conn.connected) {
          this.connect(socket, conn, f.op, body, send);
          continue;
        }
        this.counters.requests += 1;
        this.dispatch(f.op, body, send, conn.cancels, conn.client);
      }
    });
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      for (const c of conn.cancels) c();
      conn.cancels.clear();
    });
  }

  private connect(socket: net.Socket, conn: { connected: boolean; client: string }, op: number, body: Record<string, unknown>, send: (op: number, body: Record<string, unknown>) => void): void {
    const requestId = typeof body['requestId'] === 'string' ? body['requestId'] : undefined;
    const refuse = (status: StatusCode, message: string, reason: string): void => {
      this.reject(reason, { op });
      send(Op.ConnectResponse, { requestId, status, errorMessage: message });
      socket.end();
    };
    if (op !== Op.Connect) return refuse(Status.UnexpectedOperation, `the first request must be Connect (op 1), got op ${op}`, 'request before Connect; connection closed');
    const version = body['protocolVersion'];
    if (typeof version !== 'string' || !/^\d+\.\d+\.\d+$/.test(version)) {
      return refuse(Status.InvalidProtocolVersion, `protocolVersion ${JSON.stringify(version)} is not a version`, 'invalid protocol version; connection closed');
    }
    const others = Array.isArray(body['otherSupportedProtocolVersions']) ? (body['otherSupportedProtocolVersions'] as unknown[]) : [];
    const chosen = [version, ...others].find((v): v is string => typeof v === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(v));
    if (!chosen) {
      return refuse(Status.UnsupportedProtocolVersion, `protocol version ${version} is not supported (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`, 'unsupported protocol version; connection closed');
    }
    let client = 'unauthenticated client';
    if (this.o.authenticateClient) {
      const token = body['authToken'];
      const principal = typeof token === 'string' && token.length > 0 ? this.o.validateToken(token) : undefined;
      if (!principal) {
        return refuse(Status.Unauthorized, typeof token === 'string' && token ? 'the authToken is not a valid component token' : 'authToken is required (AWS_CONTAINER_AUTHORIZATION_TOKEN)', 'client refused: bad or missing authToken');
      }
      client = principal;
    }
    conn.connected = true;
    conn.client = client;
    send(Op.ConnectResponse, {
      requestId,
      status: Status.Success,
      protocolVersion: chosen,
      supportedProtocolVersions: SUPPORTED_PROTOCOL_VERSIONS,
      serverVersion: SERVER_VERSION,
      clientIdentifier: client,
    });
    this.log.debug('Stream Manager: client connected', { client, protocolVersion: chosen, sdkVersion: body['sdkVersion'] });
  }

  private dispatch(op: number, body: Record<string, unknown>, send: (op: number, body: Record<string, unknown>) => void, cancels: Set<() => void>, client: string): void {
    const requestId = body['requestId'];
    const responseOp = RESPONSE_OP[op];
    if (responseOp === undefined) {
      this.reject('unknown operation', { client, op });
      send(Op.UnknownOperationError, { requestId, status: Status.UnknownOperation, errorMessage: `unknown operation ${op}` });
      return;
    }
    const fail = (err: unknown): void => {
      if (err instanceof RequestError) {
        if (err.status !== Status.NotEnoughMessages) this.reject(`request refused (status ${err.status})`, { client, op, error: err.message });
        send(responseOp, { requestId, status: err.status, errorMessage: err.message });
      } else {
        this.log.error('Stream Manager: request failed', { client, op, err: err as Error });
        send(responseOp, { requestId, status: Status.UnknownFailure, errorMessage: err instanceof Error ? err.message : String(err) });
      }
    };
    try {
      if (typeof requestId !== 'string' || requestId.length < 1 || !NAME_PATTERN.test(requestId)) {
        throw new RequestError(Status.InvalidRequest, `requestId must be a non-empty string of letters, digits, space, ',', '.', '-' and '_'`);
      }
      if (op === Op.ReadMessages) {
        this.read(body, cancels).then((messages) => send(responseOp, { requestId, status: Status.Success, messages }), fail);
        return;
      }
      const result = this.handle(op, body);
      send(responseOp, { requestId, status: Status.Success, ...result });
    } catch (err) {
      fail(err);
    }
  }

  private handle(op: number, body: Record<string, unknown>): Record<string, unknown> {
    switch (op) {
      case Op.CreateMessageStream: {
        const def = parseDefinition(body['definition'], this.exports.supportedKinds);
        if (this.store.get(def.name)) throw new RequestError(Status.InvalidRequest, `stream '${def.name}' already exists`);
        const prepared = this.exports.prepare(def);
        let stream;
        try {
          stream = this.store.create(def);
        } catch (err) {
          this.exports.discard(prepared);
          throw err;
        }
        this.exports.attach(stream, prepared);
        this.log.info('Stream Manager: stream created', { stream: def.name, persistence: def.persistence === 0 ? 'File' : 'Memory', maxSize: def.maxSize });
        return {};
      }
      case Op.UpdateMessageStream: {
        const def = parseDefinition(body['definition'], this.exports.supportedKinds);
        const stream = this.stream(def.name);
        const st = stream.status();
        checkUpdate(stream.definition, def, st);
        const prepared = this.exports.prepare(def);
        try {
          stream.updateDefinition(def);
        } catch (err) {
          this.exports.discard(prepared);
          throw err;
        }
        this.exports.attach(stream, prepared);
        this.log.info('Stream Manager: stream updated', { stream: def.name });
        return {};
      }
      case Op.DeleteMessageStream: {
        const name = checkName(body['name'], 'name');
        this.stream(name);
        this.exports.detach(name);
        this.store.remove(name);
        this.log.info('Stream Manager: stream deleted', { stream: name });
        return {};
      }
      case Op.AppendMessage: {
        const name = checkName(body['name'], 'name');
        const payload = body['payload'];
        if (!Buffer.isBuffer(payload) || payload.length < 1) throw new RequestError(Status.InvalidRequest, 'payload must be a byte string of at least 1 byte');
        const seq = this.stream(name).append(payload, this.now());
        this.counters.appended += 1;
        return { sequenceNumber: seq };
      }
      case Op.ListStreams:
        return { streams: [...this.store.streams.keys()].sort() };
      case Op.DescribeMessageStream: {
        const name = checkName(body['name'], 'name');
        const s = this.stream(name);
        return {
          messageStreamInfo: {
            definition: definitionToWire(s.definition),
            storageStatus: s.status(),
            exportStatuses: this.exports.statuses(name).map(dropUndefined),
          },
        };
      }
      default:
        throw new RequestError(Status.UnknownOperation, `unknown operation ${op}`);
    }
  }

  private stream(name: string) {
    const s = this.store.get(name);
    if (!s) throw new RequestError(Status.ResourceNotFound, `stream '${name}' does not exist`);
    return s;
  }

  /** ReadMessages with its long poll (readTimeoutMillis): answers once minMessageCount are there, NotEnoughMessages when the time is up. */
  private read(body: Record<string, unknown>, cancels: Set<() => void>): Promise<Record<string, unknown>[]> {
    const name = checkName(body['streamName'], 'streamName');
    const opts = body['readMessagesOptions'] ?? {};
    if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new RequestError(Status.InvalidRequest, 'readMessagesOptions must be a map');
    const o = opts as Record<string, unknown>;
    const num = (k: string, dflt: number, min: number, max: number): number => {
      const v = o[k];
      if (v === undefined || v === null) return dflt;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new RequestError(Status.InvalidRequest, `readMessagesOptions.${k} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return v;
    };
    const start = num('desiredStartSequenceNumber', 0, 0, Number.MAX_SAFE_INTEGER);
    const min = num('minMessageCount', 1, 1, 2147483647);
    const max = num('maxMessageCount', Math.max(1, min), 1, 2147483647);
    const timeout = num('readTimeoutMillis', 0, 0, MAX_MILLIS);
    if (min > max) throw new RequestError(Status.InvalidRequest, `minMessageCount (${min}) must not be above maxMessageCount (${max})`);
    const stream = this.stream(name);
    // Leave room in the response frame for the message framing around the payloads.
    const budget = Math.max(1, this.maxFrameBytes - 64 * 1024 - max * 64);
    const attempt = (): Record<string, unknown>[] | undefined => {
      const got = stream.read(start, max, budget);
      if (got.length >= min) return got.map((m) => ({ streamName: m.streamName, sequenceNumber: m.sequenceNumber, ingestTime: m.ingestTime, payload: m.payload }));
      if (stream.nextSequenceNumber - Math.max(start, stream.status().oldestSequenceNumber) >= min && got.length < min) {
        throw new RequestError(Status.ResponsePayloadTooLarge, `${min} messages from ${start} do not fit one response (${this.maxFrameBytes} bytes)`);
      }
      return undefined;
    };
    const now = attempt();
    if (now) return Promise.resolve(now);
    const notEnough = (): RequestError => new RequestError(Status.NotEnoughMessages, `fewer than ${min} messages from sequence number ${start} in stream '${name}'${timeout > 0 ? ` within ${timeout} ms` : ''}`);
    if (timeout === 0) return Promise.reject(notEnough());
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        stream.off('append', onAppend);
        stream.off('removed', onRemoved);
        cancels.delete(cancel);
      };
      const onAppend = (): void => {
        try {
          const got = attempt();
          if (got) {
            done();
            resolve(got);
          }
        } catch (err) {
          done();
          reject(err);
        }
      };
      const onRemoved = (): void => {
        done();
        reject(new RequestError(Status.ResourceNotFound, `stream '${name}' was deleted while reading`));
      };
      const cancel = (): void => done();
      const timer = setTimeout(() => {
        done();
        reject(notEnough());
      }, Math.min(timeout, 2_147_483_647));
      stream.on('append', onAppend);
      stream.on('removed', onRemoved);
      cancels.add(cancel);
    });
  }
}

const RESPONSE_OP: Record<number, number> = {
  [Op.CreateMessageStream]: Op.CreateMessageStreamResponse,
  [Op.DeleteMessageStream]: Op.DeleteMessageStreamResponse,
  [Op.AppendMessage]: Op.AppendMessageResponse,
  [Op.ReadMessages]: Op.ReadMessagesResponse,
  [Op.ListStreams]: Op.ListStreamsResponse,
  [Op.DescribeMessageStream]: Op.DescribeMessageStreamResponse,
  [Op.UpdateMessageStream]: Op.UpdateMessageStreamResponse,
};

function dropUndefined<T extends object>(o: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export type { StreamDefinition };
