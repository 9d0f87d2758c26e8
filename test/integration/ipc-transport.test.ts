/**
 * The IPC transport against the real `aws-iot-device-sdk-v2` client, plus raw-socket tests for
 * what that client never sends (garbage, bad CRCs, protocol violations, pings).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { eventstream_rpc, greengrasscoreipc, io } from 'aws-iot-device-sdk-v2';
import { createLogger, type Logger } from '../../components/lib/logger';
import { encodeMessage, FrameDecoder, hdr, findHeader, type Header, type Message } from '../../scripts/runtime/ipc/codec';
import {
  createIpcServer,
  IpcError,
  type IpcCaller,
  type IpcEventStream,
  type IpcServer,
  type IpcServerOptions,
  type OperationDef,
} from '../../scripts/runtime/ipc/server';
import { tmpDir, waitFor } from '../helpers/wait';

const GOOD_TOKEN = 'ABCDEFGHIJKLMNOP';
const COMPONENT = 'com.example.Tester';
const OP = (name: string): string => `aws.greengrass#${name}`;
const EVENT_SHAPE = OP('SubscriptionResponseMessage');

type GgClient = greengrasscoreipc.Client;

// ---------------------------------------------------------------------------------------------
// A fake pub/sub service: just enough operations to drive the transport.

interface Subscription {
  topic: string;
  caller: IpcCaller;
  stream: IpcEventStream;
  closedCount: number;
}

class FakeOps {
  readonly subs: Subscription[] = [];
  readonly publishes: Array<{ caller: IpcCaller; request: Record<string, unknown> }> = [];

  readonly operations: Record<string, OperationDef> = {
    [OP('PublishToTopic')]: {
      kind: 'unary',
      handler: (caller, request) => {
        if (request.topic === 'forbidden') throw new IpcError('UnauthorizedError', `${caller.componentName} may not publish`);
        this.publishes.push({ caller, request });
        const pm = request.publishMessage as { binaryMessage?: { message?: string }; jsonMessage?: { message?: unknown } };
        for (const s of this.subs) {
          if (s.topic !== request.topic) continue;
          const context = { topic: request.topic };
          s.stream.send(
            EVENT_SHAPE,
            pm.binaryMessage
              ? { binaryMessage: { message: pm.binaryMessage.message, context } }
              : { jsonMessage: { message: pm.jsonMessage?.message, context } },
          );
        }
        return {};
      },
    },
    [OP('SubscribeToTopic')]: {
      kind: 'stream',
      handler: async (caller, request, stream) => {
        const topic = String(request.topic);
        if (topic === 'forbidden') throw new IpcError('UnauthorizedError', 'not authorized to subscribe');
        const sub: Subscription = { topic, caller, stream, closedCount: 0 };
        this.subs.push(sub);
        stream.onClose(() => {
          sub.closedCount++;
          this.subs.splice(this.subs.indexOf(sub), 1);
        });
        if (topic === 'close-early') {
          // Closed before the response: the response, the held event, then the close must follow in order.
          stream.send(EVENT_SHAPE, { jsonMessage: { message: { early: true }, context: { topic } } });
          stream.close(new IpcError('ServiceError', 'bye'));
          stream.send(EVENT_SHAPE, { jsonMessage: { message: { late: true }, context: { topic } } });
        }
        // `preload/N`: N events emitted before the response, which must be held back until after it.
        const m = /^preload\/(\d+)$/.exec(topic);
        if (m) {
          for (let i = 0; i < Number(m[1]); i++) stream.send(EVENT_SHAPE, { jsonMessage: { message: { i }, context: { topic } } });
          await new Promise((resolve) => setImmediate(resolve));
        }
        return {};
      },
    },
    [OP('GetConfiguration')]: {
      kind: 'unary',
      handler: () => {
        throw new Error('config store exploded');
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Harness

let dir: string;
let fake: FakeOps;
let server: IpcServer;
let socketPath: string;
let logLines: string[];
const servers: IpcServer[] = [];
const clients: GgClient[] = [];
const sockets: net.Socket[] = [];
const children: ChildProcess[] = [];

function captureLogger(): Logger {
  return createLogger({}, { level: 'debug', write: (line) => void logLines.push(line) });
}

async function startServer(overrides: Partial<IpcServerOptions> = {}): Promise<IpcServer> {
  const s = createIpcServer({
    socketPath,
    authenticate: (token) => (token === GOOD_TOKEN ? COMPONENT : token === 'OTHERTOKEN000000' ? 'com.example.Other' : undefined),
    operations: fake.operations,
    logger: captureLogger(),
    ...overrides,
  });
  servers.push(s);
  await s.listen();
  return s;
}

function newClient(token: string | undefined, at = socketPath): GgClient {
  const client = greengrasscoreipc.createClient({
    hostName: at,
    port: 0,
    socketOptions: new io.SocketOptions(io.SocketType.STREAM, io.SocketDomain.LOCAL),
    connectTransform: async (options) => {
      if (token !== undefined) options.message.payload = JSON.stringify({ authToken: token });
      return options.message;
    },
  });
  clients.push(client);
  return client;
}

async function connectedClient(token = GOOD_TOKEN): Promise<GgClient> {
  const c = newClient(token);
  await c.connect();
  return c;
}

async function rejection(p: Promise<unknown>): Promise<eventstream_rpc.RpcError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(eventstream_rpc.RpcError);
    return err as eventstream_rpc.RpcError;
  }
  throw new Error('expected the call to fail');
}

beforeEach(async () => {
  dir = tmpDir();
  socketPath = path.join(dir, 'ipc.socket');
  fake = new FakeOps();
  logLines = [];
  server = await startServer();
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  for (const s of sockets.splice(0)) s.destroy();
  for (const ch of children.splice(0)) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
  for (const s of servers.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Raw socket client

class RawClient {
  readonly received: Message[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder();

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.received.push(...this.decoder.push(chunk)));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => undefined);
  }

  static async open(at = socketPath): Promise<RawClient> {
    const socket = net.connect(at);
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawClient(socket);
  }

  /** Open and complete the handshake. */
  static async connected(): Promise<RawClient> {
    const raw = await RawClient.open();
    raw.send(rpc(4, 0, 0, [hdr.string(':version', '0.1.0')], { authToken: GOOD_TOKEN }));
    const ack = await raw.next();
    expect(meta(ack)).toEqual({ type: 5, flags: 1, streamId: 0 });
    return raw;
  }

  send(msg: Message): void {
    this.socket.write(encodeMessage(msg));
  }

  async next(timeoutMs = 10000): Promise<Message> {
    await waitFor(() => this.received.length > 0, timeoutMs, 'a message from the server');
    return this.received.shift() as Message;
  }

  async waitClosed(timeoutMs = 10000): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, 'the server to close the connection');
  }
}

function rpc(type: number, flags: number, streamId: number, extra: Header[] = [], body?: unknown): Message {
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  return {
    headers: [hdr.int32(':message-type', type), hdr.int32(':message-flags', flags), hdr.int32(':stream-id', streamId), ...extra],
    payload,
  };
}

function meta(msg: Message): { type: unknown; flags: unknown; streamId: unknown } {
  return {
    type: findHeader(msg, ':message-type')?.value,
    flags: findHeader(msg, ':message-flags')?.value,
    streamId: findHeader(msg, ':stream-id')?.value,
  };
}

function str(msg: Message, name: string): unknown {
  return findHeader(msg, name)?.value;
}

const request = (streamId: number, op: string, body: unknown): Message =>
  rpc(0, 0, streamId, [hdr.string('operation', OP(op))], body);

async function expectProtocolError(raw: RawClient, fragment: RegExp): Promise<void> {
  const msg = await raw.next();
  expect(meta(msg)).toEqual({ type: 6, flags: 0, streamId: 0 });
  expect(str(msg, ':content-type')).toBe('application/json');
  expect(JSON.parse(msg.payload.toString()).message).toMatch(fragment);
  await raw.waitClosed();
}

// ---------------------------------------------------------------------------------------------
// Tests with the real SDK client

describe('IPC transport with the real greengrasscoreipc client', () => {
  it('listens on a 0666 socket and accepts a client with a valid token', async () => {
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o666);
    await connectedClient();
    await waitFor(() => server.connectionCount() === 1, 10000, 'one connection');
    expect(server.stats().connections).toBe(1);
  });

  it('rejects a wrong token and a missing token with a HandshakeError', async () => {
    const err = await rejection(newClient('WRONGTOKEN').connect());
    expect(err.type).toBe(eventstream_rpc.RpcErrorType.HandshakeError);
    const err2 = await rejection(newClient(undefined).connect());
    expect(err2.type).toBe(eventstream_rpc.RpcErrorType.HandshakeError);
    await waitFor(() => server.connectionCount() === 0, 10000, 'rejected connections to close');
    expect(logLines.some((l) => l.includes('IPC connection rejected'))).toBe(true);
    expect(logLines.some((l) => l.includes('WRONGTOKEN'))).toBe(false);
  });

  it('answers a unary call and passes the authenticated caller to the handler', async () => {
    const client = await connectedClient();
    const res = await client.publishToTopic({ topic: 't/1', publishMessage: { jsonMessage: { message: { v: 42 } } } });
    expect(res).toEqual({});
    expect(fake.publishes).toHaveLength(1);
    expect(fake.publishes[0]?.caller.componentName).toBe(COMPONENT);
    expect(fake.publishes[0]?.request).toEqual({ topic: 't/1', publishMessage: { jsonMessage: { message: { v: 42 } } } });
    // The unary stream ended with the response: nothing left open on the server.
    await waitFor(() => server.stats().streams === 0, 10000, 'no open streams');
  });

  it('delivers a streaming response, then events in order (events sent before the response are held)', async () => {
    const client = await connectedClient();
    const got: unknown[] = [];
    const op = client.subscribeToTopic({ topic: 'preload/5' });
    op.on('message', (m) => got.push(m.jsonMessage?.message));
    await expect(op.activate()).resolves.toEqual({});
    await waitFor(() => got.length === 5, 10000, 'the preloaded events');
    expect(got).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));

    const publisher = await connectedClient('OTHERTOKEN000000');
    for (let i = 0; i < 20; i++) {
      await publisher.publishToTopic({ topic: 'preload/5', publishMessage: { jsonMessage: { message: { n: i } } } });
    }
    await waitFor(() => got.length === 25, 10000, 'the published events');
    expect(got.slice(5)).toEqual(Array.from({ length: 20 }, (_, n) => ({ n })));
    expect(server.stats().streams).toBe(1);
  });

  it('treats the client closing a streaming operation as unsubscribe', async () => {
    const client = await connectedClient();
    const op = client.subscribeToTopic({ topic: 'a/b' });
    await op.activate();
    expect(fake.subs).toHaveLength(1);
    const sub = fake.subs[0] as Subscription;
    await op.close();
    await waitFor(() => sub.closedCount === 1, 10000, 'onClose after the client closed the stream');
    expect(sub.stream.closed).toBe(true);
    // The connection stays usable.
    await expect(client.publishToTopic({ topic: 'x', publishMessage: { jsonMessage: { message: {} } } })).resolves.toEqual({});
  });

  it('delivers a modeled error as an RpcError ServiceError with serviceError.message', async () => {
    const client = await connectedClient();
    const err = await rejection(client.publishToTopic({ topic: 'forbidden', publishMessage: { jsonMessage: { message: {} } } }));
    expect(err.type).toBe(eventstream_rpc.RpcErrorType.ServiceError);
    expect(err.serviceError?.message).toBe(`${COMPONENT} may not publish`);

    const op = client.subscribeToTopic({ topic: 'forbidden' });
    const err2 = await rejection(op.activate());
    expect(err2.type).toBe(eventstream_rpc.RpcErrorType.ServiceError);
    expect(err2.serviceError?.message).toBe('not authorized to subscribe');
  });

  it('answers an operation without a handler with "not supported", and a throwing handler with ServiceError', async () => {
    const client = await connectedClient();
    const err = await rejection(client.listComponents({}));
    expect(err.type).toBe(eventstream_rpc.RpcErrorType.ServiceError);
    expect(err.serviceError?.message).toBe('Operation aws.greengrass#ListComponents is not supported by Greengrass');

    const err2 = await rejection(client.getConfiguration({ keyPath: ['a'] }));
    expect(err2.type).toBe(eventstream_rpc.RpcErrorType.ServiceError);
    expect(err2.serviceError?.message).toBe('config store exploded');
    expect(logLines.some((l) => l.includes('operation handler failed') && l.includes('config store exploded'))).toBe(true);
  });

  it('closes a stream from the server side as a ServiceError the client sees', async () => {
    const client = await connectedClient();
    const op = client.subscribeToTopic({ topic: 'c' });
    const errors: eventstream_rpc.RpcError[] = [];
    let ended = false;
    op.on('streamError', (e) => errors.push(e));
    op.on('ended', () => {
      ended = true;
    });
    await op.activate();
    const sub = fake.subs[0] as Subscription;
    sub.stream.close(new IpcError('ServiceError', 'component is being removed'));
    await waitFor(() => ended && errors.length > 0, 10000, 'streamError and ended');
    expect(errors[0]?.type).toBe(eventstream_rpc.RpcErrorType.ServiceError);
    expect(errors[0]?.serviceError?.message).toBe('component is being removed');
    expect(sub.closedCount).toBe(1);
    sub.stream.send(EVENT_SHAPE, { jsonMessage: { message: {} } }); // ignored after close
  });

  it('drops all streams of a client that closes its connection', async () => {
    const client = await connectedClient();
    for (const topic of ['s/1', 's/2']) await client.subscribeToTopic({ topic }).activate();
    expect(server.stats().streams).toBe(2);
    const subs = [...fake.subs];
    await client.close();
    await waitFor(() => subs.every((s) => s.closedCount === 1), 10000, 'onClose for both streams');
    await waitFor(() => server.connectionCount() === 0, 10000, 'connection gone');
    expect(server.stats().streams).toBe(0);
  });

  it('drops the streams of a client process that is killed', async () => {
    const script = `
      const { greengrasscoreipc } = require(${JSON.stringify(require.resolve('aws-iot-device-sdk-v2'))});
      (async () => {
        const c = greengrasscoreipc.createClient();
        await c.connect();
        await c.subscribeToTopic({ topic: 'child' }).activate();
        process.stdout.write('subscribed\\n');
        setInterval(() => undefined, 1000);
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT: socketPath, SVCUID: GOOD_TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('subscribed') || child.exitCode !== null, 30000, 'the child to subscribe');
    expect(out).toContain('subscribed');
    const sub = fake.subs[0] as Subscription;
    expect(sub.caller.componentName).toBe(COMPONENT);
    child.kill('SIGKILL');
    await waitFor(() => sub.closedCount === 1, 10000, 'onClose after the client process died');
    await waitFor(() => server.connectionCount() === 0, 10000, 'connection gone');
  });

  it('round-trips a 1 MB message', async () => {
    const client = await connectedClient();
    const received: Buffer[] = [];
    const op = client.subscribeToTopic({ topic: 'big' });
    op.on('message', (m) => {
      const payload = m.binaryMessage?.message;
      if (payload !== undefined) received.push(Buffer.from(payload as ArrayBuffer));
    });
    await op.activate();
    const blob = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 31) & 0xff;
    await client.publishToTopic({ topic: 'big', publishMessage: { binaryMessage: { message: blob } } });
    await waitFor(() => received.length === 1, 20000, 'the 1 MB event');
    expect(received[0]?.equals(blob)).toBe(true);
  });

  it('closes a stream with a ServiceError instead of sending an event larger than the message limit', async () => {
    await server.close();
    server = await startServer({ maxMessageBytes: 64 * 1024 });
    const client = await connectedClient();
    const op = client.subscribeToTopic({ topic: 'limit' });
    const errors: eventstream_rpc.RpcError[] = [];
    op.on('streamError', (e) => errors.push(e));
    await op.activate();
    const sub = fake.subs[0] as Subscription;
    sub.stream.send(EVENT_SHAPE, { jsonMessage: { message: { big: 'x'.repeat(100 * 1024) }, context: { topic: 'limit' } } });
    await waitFor(() => errors.length > 0, 10000, 'the streamError');
    expect(errors[0]?.type).toBe(eventstream_rpc.RpcErrorType.ServiceError);
    expect(errors[0]?.serviceError?.message).toMatch(/exceeds the maximum message size/);
    expect(sub.closedCount).toBe(1);
    expect(logLines.some((l) => l.includes('event too large'))).toBe(true);
  });

  it('disconnectComponent closes that component’s connections only', async () => {
    const client = await connectedClient();
    const other = await connectedClient('OTHERTOKEN000000');
    let disconnected = false;
    client.on('disconnection', () => {
      disconnected = true;
    });
    await client.subscribeToTopic({ topic: 'd' }).activate();
    const sub = fake.subs[0] as Subscription;
    server.disconnectComponent(COMPONENT);
    await waitFor(() => disconnected && sub.closedCount === 1, 10000, 'the component to be disconnected');
    await waitFor(() => server.connectionCount() === 1, 10000, 'one connection left');
    await expect(other.publishToTopic({ topic: 'd', publishMessage: { jsonMessage: { message: {} } } })).resolves.toEqual({});
  });
});

// ---------------------------------------------------------------------------------------------
// Raw-socket tests

describe('IPC transport with a raw socket', () => {
  it('closes a connection that sends garbage and keeps serving others', async () => {
    const raw = await RawClient.open();
    raw.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await raw.waitClosed();
    expect(server.stats().protocolErrors).toBe(1);
    expect(logLines.some((l) => l.includes('framing error'))).toBe(true);
    const client = await connectedClient();
    await expect(client.publishToTopic({ topic: 'ok', publishMessage: { jsonMessage: { message: {} } } })).resolves.toEqual({});
  });

  it('closes a connection on a bad message CRC', async () => {
    const raw = await RawClient.open();
    const frame = encodeMessage(rpc(4, 0, 0, [hdr.string(':version', '0.1.0')], { authToken: GOOD_TOKEN }));
    frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 0xff;
    raw.socket.write(frame);
    await raw.waitClosed();
    expect(raw.received).toHaveLength(0);
    expect(server.stats().protocolErrors).toBe(1);
  });

  it('closes a connection whose frame header claims an oversized message, without waiting for it', async () => {
    const raw = await RawClient.open();
    const prelude = Buffer.alloc(12);
    prelude.writeUInt32BE(100 * 1024 * 1024, 0);
    prelude.writeUInt32BE(0, 4);
    prelude.writeUInt32BE(zlib.crc32(prelude.subarray(0, 8)), 8);
    raw.socket.write(prelude);
    await raw.waitClosed();
    expect(logLines.some((l) => l.includes('MESSAGE_TOO_LARGE'))).toBe(true);
  });

  it('answers a message before Connect with a ProtocolError', async () => {
    const raw = await RawClient.open();
    raw.send(request(1, 'PublishToTopic', { topic: 'a' }));
    await expectProtocolError(raw, /handshake/i);
    expect(fake.publishes).toHaveLength(0);
  });

  it('rejects a Connect with a wrong :version', async () => {
    const raw = await RawClient.open();
    raw.send(rpc(4, 0, 0, [hdr.string(':version', '9.9.9')], { authToken: GOOD_TOKEN }));
    expect(meta(await raw.next())).toEqual({ type: 5, flags: 0, streamId: 0 });
    await raw.waitClosed();
  });

  it('answers a message without the required headers with a ProtocolError', async () => {
    const raw = await RawClient.connected();
    raw.send({ headers: [hdr.int32(':message-type', 2), hdr.int32(':stream-id', 0)], payload: Buffer.alloc(0) });
    await expectProtocolError(raw, /:message-flags/);
  });

  it('answers a second Connect with a ProtocolError', async () => {
    const raw = await RawClient.connected();
    raw.send(rpc(4, 0, 0, [hdr.string(':version', '0.1.0')], { authToken: GOOD_TOKEN }));
    await expectProtocolError(raw, /already/);
  });

  it('answers a non-sequential stream id with a ProtocolError', async () => {
    const raw = await RawClient.connected();
    raw.send(request(1, 'PublishToTopic', { topic: 'a', publishMessage: { jsonMessage: { message: {} } } }));
    expect(meta(await raw.next())).toEqual({ type: 0, flags: 2, streamId: 1 });
    raw.send(request(3, 'PublishToTopic', { topic: 'a', publishMessage: { jsonMessage: { message: {} } } }));
    await expectProtocolError(raw, /not sequential/);
    expect(fake.publishes).toHaveLength(1);
  });

  it('answers a new stream without an operation header with a ProtocolError', async () => {
    const raw = await RawClient.connected();
    raw.send(rpc(0, 0, 1, [], {}));
    await expectProtocolError(raw, /operation/);
  });

  it('ignores TerminateStream on a closed stream but rejects other messages on it', async () => {
    const raw = await RawClient.connected();
    raw.send(request(1, 'PublishToTopic', { topic: 'a', publishMessage: { jsonMessage: { message: {} } } }));
    await raw.next();
    raw.send(rpc(0, 2, 1)); // stream 1 already ended with the response: ignored
    raw.send(rpc(2, 0, 0, [hdr.string('probe', 'p')], Buffer.from('x')));
    expect(meta(await raw.next())).toEqual({ type: 3, flags: 0, streamId: 0 });
    raw.send(rpc(0, 0, 1, [], {}));
    await expectProtocolError(raw, /No open stream/);
  });

  it('answers Ping with a PingResponse echoing the payload and application headers', async () => {
    const raw = await RawClient.connected();
    raw.send(rpc(2, 0, 0, [hdr.string('x-probe', 'abc'), hdr.int64('n', 7n)], Buffer.from('ping-body')));
    const pong = await raw.next();
    expect(meta(pong)).toEqual({ type: 3, flags: 0, streamId: 0 });
    expect(pong.payload.toString()).toBe('ping-body');
    expect(str(pong, 'x-probe')).toBe('abc');
    expect(str(pong, 'n')).toBe(7n);
    expect(raw.closed).toBe(false);
  });

  it('sends responses with the Greengrass headers: unary flags 2, streaming flags 0, then events', async () => {
    const raw = await RawClient.connected();
    raw.send(request(1, 'SubscribeToTopic', { topic: 'preload/2' }));
    const res = await raw.next();
    expect(meta(res)).toEqual({ type: 0, flags: 0, streamId: 1 });
    expect(str(res, 'service-model-type')).toBe('aws.greengrass#SubscribeToTopicResponse');
    expect(str(res, ':content-type')).toBe('application/json');
    expect(res.payload.toString()).toBe('{}');
    for (const i of [0, 1]) {
      const ev = await raw.next();
      expect(meta(ev)).toEqual({ type: 0, flags: 0, streamId: 1 });
      expect(str(ev, 'service-model-type')).toBe(EVENT_SHAPE);
      expect(JSON.parse(ev.payload.toString()).jsonMessage.message).toEqual({ i });
    }
    raw.send(request(2, 'PublishToTopic', { topic: 'zzz', publishMessage: { jsonMessage: { message: {} } } }));
    const unary = await raw.next();
    expect(meta(unary)).toEqual({ type: 0, flags: 2, streamId: 2 });
    expect(str(unary, 'service-model-type')).toBe('aws.greengrass#PublishToTopicResponse');

    raw.send(request(3, 'PublishToTopic', { topic: 'forbidden' }));
    const err = await raw.next();
    expect(meta(err)).toEqual({ type: 1, flags: 2, streamId: 3 });
    expect(str(err, 'service-model-type')).toBe('aws.greengrass#UnauthorizedError');
    expect(JSON.parse(err.payload.toString())).toEqual({
      _service: 'aws.greengrass#GreengrassCoreIPC',
      _message: `${COMPONENT} may not publish`,
      _errorCode: 'UnauthorizedError',
      message: `${COMPONENT} may not publish`,
    });
  });

  it('sends a close requested before the response after the response and the held events', async () => {
    const raw = await RawClient.connected();
    raw.send(request(1, 'SubscribeToTopic', { topic: 'close-early' }));
    const res = await raw.next();
    expect(meta(res)).toEqual({ type: 0, flags: 0, streamId: 1 });
    expect(str(res, 'service-model-type')).toBe('aws.greengrass#SubscribeToTopicResponse');
    const ev = await raw.next();
    expect(JSON.parse(ev.payload.toString()).jsonMessage.message).toEqual({ early: true });
    const close = await raw.next();
    expect(meta(close)).toEqual({ type: 1, flags: 2, streamId: 1 });
    expect(str(close, 'service-model-type')).toBe('aws.greengrass#ServiceError');
    expect(JSON.parse(close.payload.toString()).message).toBe('bye');
    raw.send(rpc(2, 0, 0));
    expect(meta(await raw.next())).toEqual({ type: 3, flags: 0, streamId: 0 }); // the late event was not sent
    expect((fake.subs as Subscription[]).length).toBe(0);
  });

  it('answers an invalid JSON request with the unmodeled text/plain error', async () => {
    const raw = await RawClient.connected();
    raw.send(request(1, 'PublishToTopic', Buffer.from('{not json')));
    const err = await raw.next();
    expect(meta(err)).toEqual({ type: 1, flags: 2, streamId: 1 });
    expect(str(err, ':content-type')).toBe('text/plain');
    expect(findHeader(err, 'service-model-type')).toBeUndefined();
    expect(err.payload.toString()).toBe('InternalServerError');
    expect(raw.closed).toBe(false);
  });

  it('treats TerminateStream as unsubscribe without replying, and a dropped socket as closing every stream', async () => {
    const raw = await RawClient.connected();
    raw.send(request(1, 'SubscribeToTopic', { topic: 'r/1' }));
    raw.send(request(2, 'SubscribeToTopic', { topic: 'r/2' }));
    await raw.next();
    await raw.next();
    const [s1, s2] = fake.subs as [Subscription, Subscription];
    raw.send(rpc(0, 2, 1));
    raw.send(rpc(2, 0, 0));
    expect(meta(await raw.next())).toEqual({ type: 3, flags: 0, streamId: 0 }); // no reply to the terminate came first
    expect(s1.closedCount).toBe(1);
    expect(s2.closedCount).toBe(0);
    raw.socket.destroy();
    await waitFor(() => s2.closedCount === 1, 10000, 'onClose after the socket dropped');
  });

  it('closes a connection that does not complete the handshake in time', async () => {
    await server.close();
    server = await startServer({ handshakeTimeoutMs: 200 });
    const raw = await RawClient.open();
    await raw.waitClosed(5000);
    expect(server.connectionCount()).toBe(0);
  });

  it('closes a reader that stops reading once its output exceeds the bound, without affecting others', async () => {
    await server.close();
    server = await startServer({ maxOutboundBytes: 1024 * 1024 });
    const raw = await RawClient.connected();
    raw.send(request(1, 'SubscribeToTopic', { topic: 'slow' }));
    await raw.next();
    raw.socket.pause();
    const sub = fake.subs[0] as Subscription;
    const chunk = 'x'.repeat(64 * 1024);
    let sent = 0;
    while (!sub.stream.closed && sent < 1000) {
      sub.stream.send(EVENT_SHAPE, { jsonMessage: { message: { chunk }, context: { topic: 'slow' } } });
      sent++;
    }
    expect(sub.stream.closed).toBe(true);
    expect(sent).toBeLessThan(1000);
    expect(sub.closedCount).toBe(1);
    expect(logLines.some((l) => l.includes('outbound buffer limit exceeded'))).toBe(true);
    const client = await connectedClient();
    await expect(client.publishToTopic({ topic: 'ok', publishMessage: { jsonMessage: { message: {} } } })).resolves.toEqual({});
  });

  it('close() is idempotent, removes the socket file, and listen() replaces a stale socket file', async () => {
    await RawClient.connected();
    await Promise.all([server.close(), server.close()]);
    expect(fs.existsSync(socketPath)).toBe(false);
    expect(server.connectionCount()).toBe(0);
    // A stale socket left by a crashed runtime (a bound socket with no listener).
    const stale = net.createServer();
    await new Promise<void>((resolve) => stale.listen(socketPath, resolve));
    await new Promise<void>((resolve) => {
      // Close the handle without letting it unlink the file: simulate a crash by duplicating the path.
      fs.linkSync(socketPath, socketPath + '.keep');
      stale.close(() => resolve());
    });
    fs.renameSync(socketPath + '.keep', socketPath);
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
    server = await startServer();
    const client = await connectedClient();
    await expect(client.publishToTopic({ topic: 'ok', publishMessage: { jsonMessage: { message: {} } } })).resolves.toEqual({});
  });

  it('refuses a socket path that is too long or occupied by a regular file', async () => {
    expect(() => createIpcServer({ socketPath: '/tmp/' + 'x'.repeat(120), authenticate: () => undefined, operations: {}, logger: captureLogger() })).toThrow(
      /under 108 bytes/,
    );
    const file = path.join(dir, 'not-a-socket');
    fs.writeFileSync(file, 'keep me');
    const s = createIpcServer({ socketPath: file, authenticate: () => undefined, operations: {}, logger: captureLogger() });
    servers.push(s);
    await expect(s.listen()).rejects.toMatchObject({ code: 'SOCKET_PATH_NOT_SOCKET' });
    await s.close();
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
  });
});
