/**
 * The Stream Manager server on the raw socket: the framing and handshake cases AWS's client cannot
 * produce (a frame split byte by byte, several frames in one chunk, an unknown operation, a frame
 * over the limit, a bad connect version, requests before Connect, truncated CBOR), and the
 * authentication switch.
 */
import fs from 'node:fs';
import net from 'node:net';
import cbor from 'cbor';
import { silentLogger } from '../../components/lib/logger';
import { FrameDecoder, FrameTooLargeError, Op, Status, encodeFrame } from '../../scripts/runtime/stream-manager/protocol';
import { StreamManagerServer } from '../../scripts/runtime/stream-manager/server';

type Msg = { op: number; body: Record<string, unknown> };

class RawClient {
  private readonly decoder = new FrameDecoder(1 << 30, true);
  readonly frames: Msg[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      for (const f of this.decoder.push(d)) this.frames.push({ op: f.op, body: f.op === -1 ? { version: f.payload[0] } : (cbor.decodeFirstSync(f.payload) as Record<string, unknown>) });
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
    });
  }
  async next(): Promise<Msg> {
    while (this.frames.length === 0) {
      if (this.closed) throw new Error('closed');
      await new Promise<void>((r) => this.waiters.push(r));
    }
    return this.frames.shift()!;
  }
  async untilClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }
  async handshake(token?: string): Promise<Msg> {
    this.socket.write(Buffer.from([1]));
    this.socket.write(encodeFrame(Op.Connect, { requestId: 'c1', protocolVersion: '1.1.0', otherSupportedProtocolVersions: ['1.0.0'], sdkVersion: 'raw', authToken: token }));
    const v = await this.next();
    expect(v).toEqual({ op: -1, body: { version: 1 } });
    return this.next();
  }
}

describe('Stream Manager server: wire protocol', () => {
  let root: string;
  let server: StreamManagerServer;

  beforeAll(async () => {
    root = fs.mkdtempSync('/tmp/sm-');
    server = new StreamManagerServer({
      storeRoot: root,
      port: 0,
      authenticateClient: true,
      validateToken: (t) => (t === 'GOOD' ? 'com.test.Raw' : undefined),
      exports: { factories: {}, env: { region: 'us-east-1', endpoints: {} } },
      log: silentLogger,
      maxFrameBytes: 64 * 1024,
    });
    await server.start();
  });

  afterAll(async () => {
    await server.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('the decoder joins frames split at any byte and splits several frames in one chunk', () => {
    const a = encodeFrame(Op.ListStreams, { requestId: 'a' });
    const b = encodeFrame(Op.AppendMessage, { requestId: 'b', name: 's', payload: Buffer.alloc(300, 7) });
    const all = Buffer.concat([Buffer.from([1]), a, b]);
    const d = new FrameDecoder(1 << 20, true);
    const out = [];
    for (const byte of all) out.push(...d.push(Buffer.from([byte])));
    expect(out.map((f) => f.op)).toEqual([-1, Op.ListStreams, Op.AppendMessage]);
    const d2 = new FrameDecoder(1 << 20, false);
    expect(d2.push(Buffer.concat([a, b, a])).map((f) => f.op)).toEqual([Op.ListStreams, Op.AppendMessage, Op.ListStreams]);
    expect((cbor.decodeFirstSync(out[2]!.payload) as { payload: Buffer }).payload).toEqual(Buffer.alloc(300, 7));
    expect(d.pending).toBe(0);
  });

  test('the decoder refuses a frame announcing more than its limit before buffering it', () => {
    const d = new FrameDecoder(1000, false);
    const header = Buffer.alloc(5);
    header.writeInt32BE(1 << 30, 0);
    expect(() => d.push(header)).toThrow(FrameTooLargeError);
  });

  test('handshake: connect byte, ConnectResponse with the protocol version, then requests', async () => {
    const c = await RawClient.connect(server.port);
    const r = await c.handshake('GOOD');
    expect(r.op).toBe(Op.ConnectResponse);
    expect(r.body).toMatchObject({ requestId: 'c1', status: Status.Success, protocolVersion: '1.1.0', clientIdentifier: 'com.test.Raw' });
    c.socket.write(encodeFrame(Op.ListStreams, { requestId: 'l1' }));
    expect(await c.next()).toEqual({ op: Op.ListStreamsResponse, body: { requestId: 'l1', status: 0, streams: [] } });
    c.socket.destroy();
  });

  test('several requests in flight on one socket, written in one chunk, each answered by its id', async () => {
    const c = await RawClient.connect(server.port);
    await c.handshake('GOOD');
    c.socket.write(Buffer.concat([
      encodeFrame(Op.CreateMessageStream, { requestId: 'r1', definition: { name: 'raw', strategyOnFull: 1, persistence: 1 } }),
      encodeFrame(Op.ReadMessages, { requestId: 'r2', streamName: 'raw', readMessagesOptions: { minMessageCount: 1, readTimeoutMillis: 5000 } }),
      encodeFrame(Op.AppendMessage, { requestId: 'r3', name: 'raw', payload: Buffer.from('x') }),
    ]));
    const got = new Map<string, Msg>();
    while (got.size < 3) {
      const m = await c.next();
      got.set(m.body['requestId'] as string, m);
    }
    expect(got.get('r1')).toMatchObject({ op: Op.CreateMessageStreamResponse, body: { status: 0 } });
    expect(got.get('r3')).toMatchObject({ op: Op.AppendMessageResponse, body: { status: 0, sequenceNumber: 0 } });
    const read = got.get('r2')!;
    expect(read.op).toBe(Op.ReadMessagesResponse);
    expect((read.body['messages'] as { payload: Buffer }[])[0]!.payload.toString()).toBe('x');
    c.socket.destroy();
  });

  test('an unknown operation gets UnknownOperationError (op 17, status 18); the connection stays', async () => {
    const c = await RawClient.connect(server.port);
    await c.handshake('GOOD');
    c.socket.write(encodeFrame(99, { requestId: 'u1' }));
    expect(await c.next()).toMatchObject({ op: Op.UnknownOperationError, body: { requestId: 'u1', status: Status.UnknownOperation } });
    c.socket.write(encodeFrame(Op.ListStreams, { requestId: 'l2' }));
    expect((await c.next()).body['status']).toBe(0);
    c.socket.destroy();
  });

  test('a frame over the limit closes the connection, counted; the server goes on', async () => {
    const before = server.stats().rejected['frame over the limit; connection closed'] ?? 0;
    const c = await RawClient.connect(server.port);
    await c.handshake('GOOD');
    c.socket.write(encodeFrame(Op.AppendMessage, { requestId: 'big', name: 'raw', payload: Buffer.alloc(70 * 1024) }));
    await c.untilClosed();
    expect(server.stats().rejected['frame over the limit; connection closed']).toBe(before + 1);
    const c2 = await RawClient.connect(server.port);
    expect((await c2.handshake('GOOD')).body['status']).toBe(0);
    c2.socket.destroy();
  });

  test('truncated CBOR is answered InvalidRequest when its requestId can be read, and the connection stays', async () => {
    const c = await RawClient.connect(server.port);
    await c.handshake('GOOD');
    const whole = cbor.Encoder.encodeOne({ requestId: 'trunc', name: 'raw', payload: Buffer.alloc(2000, 1) }, { highWaterMark: 1 << 20 });
    const cut = whole.subarray(0, 1000);
    const header = Buffer.alloc(5);
    header.writeInt32BE(cut.length + 1, 0);
    header.writeInt8(Op.AppendMessage, 4);
    c.socket.write(Buffer.concat([header, cut]));
    const r = await c.next();
    expect(r).toMatchObject({ op: Op.AppendMessageResponse, body: { requestId: 'trunc', status: Status.InvalidRequest } });
    c.socket.write(encodeFrame(Op.ListStreams, { requestId: 'l3' }));
    expect((await c.next()).body['status']).toBe(0);
    c.socket.destroy();
  });

  test('connect refusals: bad token (Unauthorized), wrong connect version, a request before Connect, an unknown protocol version', async () => {
    const bad = await RawClient.connect(server.port);
    expect((await bad.handshake('WRONG')).body).toMatchObject({ status: Status.Unauthorized });
    await bad.untilClosed();
    const none = await RawClient.connect(server.port);
    expect((await none.handshake(undefined)).body).toMatchObject({ status: Status.Unauthorized });
    await none.untilClosed();

    const v2 = await RawClient.connect(server.port);
    v2.socket.write(Buffer.from([2]));
    expect(await v2.next()).toEqual({ op: -1, body: { version: 1 } });
    expect((await v2.next()).body['status']).toBe(Status.UnsupportedConnectVersion);
    await v2.untilClosed();

    const early = await RawClient.connect(server.port);
    early.socket.write(Buffer.from([1]));
    early.socket.write(encodeFrame(Op.ListStreams, { requestId: 'e' }));
    await early.next();
    expect((await early.next()).body['status']).toBe(Status.UnexpectedOperation);
    await early.untilClosed();

    const future = await RawClient.connect(server.port);
    future.socket.write(Buffer.from([1]));
    future.socket.write(encodeFrame(Op.Connect, { requestId: 'f', protocolVersion: '9.0.0', authToken: 'GOOD' }));
    await future.next();
    expect((await future.next()).body['status']).toBe(Status.UnsupportedProtocolVersion);
    await future.untilClosed();
  });

  test('read options: min above max and negative values are InvalidRequest', async () => {
    const c = await RawClient.connect(server.port);
    await c.handshake('GOOD');
    c.socket.write(encodeFrame(Op.ReadMessages, { requestId: 'o1', streamName: 'raw', readMessagesOptions: { minMessageCount: 5, maxMessageCount: 2 } }));
    expect((await c.next()).body['status']).toBe(Status.InvalidRequest);
    c.socket.write(encodeFrame(Op.ReadMessages, { requestId: 'o2', streamName: 'raw', readMessagesOptions: { readTimeoutMillis: -1 } }));
    expect((await c.next()).body['status']).toBe(Status.InvalidRequest);
    c.socket.write(encodeFrame(Op.AppendMessage, { requestId: 'o3', name: 'raw', payload: Buffer.alloc(0) }));
    expect((await c.next()).body['status']).toBe(Status.InvalidRequest);
    c.socket.write(encodeFrame(Op.AppendMessage, { requestId: 'bad id!', name: 'raw', payload: Buffer.alloc(1) }));
    expect((await c.next()).body['status']).toBe(Status.InvalidRequest);
    c.socket.destroy();
  });

  test('STREAM_MANAGER_AUTHENTICATE_CLIENT false: any local client may connect', async () => {
    const open = new StreamManagerServer({
      storeRoot: fs.mkdtempSync('/tmp/sm-'),
      port: 0,
      authenticateClient: false,
      validateToken: () => undefined,
      exports: { factories: {}, env: { region: 'us-east-1', endpoints: {} } },
      log: silentLogger,
    });
    await open.start();
    const c = await RawClient.connect(open.port);
    expect((await c.handshake(undefined)).body['status']).toBe(Status.Success);
    c.socket.destroy();
    await open.close();
  });
});
