/**
 * The IoT Core bridge against real brokers on loopback: the embedded aedes broker (with an mqtt.js
 * client acting as the cloud), an external aedes on a port that is down at first, and mosquitto when
 * it is installed.
 */
import { spawn, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Aedes from 'aedes';
import { connectAsync, MqttClient } from 'mqtt';
import { IotCore, IotCoreError, IotCoreOptions, IotMessage, createIotCore } from '../../scripts/runtime/iotcore';
import { silentLogger } from '../../components/lib/logger';

jest.setTimeout(60000);

async function waitFor(cond: () => boolean, timeoutMs = 10000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Received {
  topic: string;
  payload: string;
  qos: number;
}

/** A cloud-side client that records what it receives. */
async function cloudClient(url: string, filter: string, protocolVersion: 4 | 5 = 4): Promise<{ client: MqttClient; got: Received[] }> {
  const client = await connectAsync(url, { protocolVersion, reconnectPeriod: 0 });
  const got: Received[] = [];
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), qos: packet.qos }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, got };
}

/** Round-trips a message through the broker on the cloud client: everything sent before it has been routed. */
async function barrier(cloud: { client: MqttClient; got: Received[] }, topic: string): Promise<void> {
  const marker = `barrier-${Math.random()}`;
  await cloud.client.publishAsync(topic, marker, { qos: 1 });
  await waitFor(() => cloud.got.some((g) => g.payload === marker), 10000, 'barrier');
}

function msg(topicName: string, payload: string, qos: 0 | 1 = 1): IotMessage {
  return { topicName, qos, payload: Buffer.from(payload) };
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

const OFFLINE_DEFAULTS: IotCoreOptions['offline'] = { behaviour: 'spool', maxSpoolBytes: 2621440, keepQos0WhenOffline: false };

describe('IoT Core bridge with the embedded broker', () => {
  const cores: IotCore[] = [];
  const clients: MqttClient[] = [];

  async function startCore(offline: Partial<IotCoreOptions['offline']> = {}): Promise<IotCore> {
    const core = createIotCore({
      broker: { kind: 'embedded' },
      clientId: 'test-thing',
      offline: { ...OFFLINE_DEFAULTS, ...offline },
      logger: silentLogger,
    });
    cores.push(core);
    await core.start();
    return core;
  }

  async function cloud(core: IotCore, filter = 'dcmms/#'): Promise<{ client: MqttClient; got: Received[] }> {
    const c = await cloudClient(core.brokerUrl, filter);
    clients.push(c.client);
    return c;
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.endAsync(true);
    for (const core of cores.splice(0)) await core.close();
  });

  test('QoS 0 and QoS 1 publishes reach the cloud', async () => {
    const core = await startCore();
    expect(core.brokerUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    expect(core.stats().connected).toBe(true);
    const c = await cloud(core);
    await core.publish(msg('dcmms/site1/telemetry', 'q0', 0));
    await core.publish(msg('dcmms/site1/alarms', 'q1', 1));
    await waitFor(() => c.got.length === 2, 10000, 'two messages');
    expect(c.got).toEqual([
      { topic: 'dcmms/site1/telemetry', payload: 'q0', qos: 0 },
      { topic: 'dcmms/site1/alarms', payload: 'q1', qos: 1 },
    ]);
    expect(core.stats()).toMatchObject({ published: 2, spooled: 0, dropped: 0, rejected: 0, spoolDepth: 0 });
  });

  test('subscriptions with wildcard filters receive what the cloud publishes; shared filters are ref-counted', async () => {
    const core = await startCore();
    const c = await cloud(core);
    const plus: IotMessage[] = [];
    const hashA: IotMessage[] = [];
    const hashB: IotMessage[] = [];
    await core.subscribe('dcmms/+/commands', 1, (m) => plus.push(m));
    const unsubA = await core.subscribe('cmd/#', 1, (m) => hashA.push(m));
    const unsubB = await core.subscribe('cmd/#', 0, (m) => hashB.push(m));
    await c.client.publishAsync('dcmms/site1/commands', 'restart', { qos: 1 });
    await c.client.publishAsync('cmd', 'parent-level', { qos: 1 }); // MQTT: 'cmd/#' matches 'cmd'
    await c.client.publishAsync('cmd/a/b', 'deep', { qos: 1 });
    await waitFor(() => plus.length === 1 && hashA.length === 2 && hashB.length === 2, 10000, 'deliveries');
    expect(plus[0].topicName).toBe('dcmms/site1/commands');
    expect(plus[0].payload.toString()).toBe('restart');
    expect(hashA.map((m) => m.payload.toString())).toEqual(['parent-level', 'deep']);
    unsubA();
    await c.client.publishAsync('cmd/x', 'after-one-unsub', { qos: 1 });
    await waitFor(() => hashB.length === 3, 10000, 'remaining subscriber');
    expect(hashA).toHaveLength(2);
    unsubB();
    unsubB(); // idempotent
    await c.client.publishAsync('cmd/y', 'nobody', { qos: 1 });
    await c.client.publishAsync('dcmms/site1/commands', 'sentinel', { qos: 1 });
    await waitFor(() => plus.length === 2, 10000, 'sentinel');
    expect(hashB).toHaveLength(3);
  });

  test('offline: spools in order, holds cloud traffic, drains on reconnect, then resumes live publishes', async () => {
    const core = await startCore();
    const c = await cloud(core);
    const fromCloud: string[] = [];
    await core.subscribe('down/#', 1, (m) => fromCloud.push(m.payload.toString()));

    core.setReachable(false);
    expect(core.reachable).toBe(false);
    for (let i = 0; i < 50; i++) await core.publish(msg(`dcmms/site1/seq`, String(i)));
    await c.client.publishAsync('down/x', 'while-offline', { qos: 1 });
    await barrier(c, 'dcmms/barrier');
    expect(c.got.filter((g) => g.topic === 'dcmms/site1/seq')).toEqual([]);
    expect(fromCloud).toEqual([]);
    expect(core.stats()).toMatchObject({ spooled: 50, spoolDepth: 50, spoolBytes: 90, published: 0, connected: true });

    core.setReachable(true);
    await waitFor(() => c.got.filter((g) => g.topic === 'dcmms/site1/seq').length === 50, 10000, 'drain');
    await core.publish(msg('dcmms/site1/seq', 'live'));
    await waitFor(() => c.got.some((g) => g.payload === 'live'), 10000, 'live publish');
    const seq = c.got.filter((g) => g.topic === 'dcmms/site1/seq').map((g) => g.payload);
    expect(seq).toEqual([...Array.from({ length: 50 }, (_, i) => String(i)), 'live']);
    await waitFor(() => core.stats().spoolBytes === 0, 10000, 'acks');
    expect(core.stats()).toMatchObject({ spoolDepth: 0, published: 51 });

    await c.client.publishAsync('down/y', 'back-online', { qos: 1 });
    await waitFor(() => fromCloud.length === 1, 10000, 'cloud message');
    expect(fromCloud).toEqual(['back-online']);
  });

  test('QoS 0 is dropped offline by default, kept when keepQos0WhenOffline', async () => {
    const core = await startCore();
    core.setReachable(false);
    await expect(core.publish(msg('dcmms/q0', 'gone', 0))).rejects.toThrow(/Dropping QoS 0/);
    expect(core.stats()).toMatchObject({ dropped: 1, spoolDepth: 0, rejected: 0 });

    const keeper = await startCore({ keepQos0WhenOffline: true });
    const c = await cloud(keeper);
    keeper.setReachable(false);
    await keeper.publish(msg('dcmms/q0', 'kept', 0));
    expect(keeper.stats()).toMatchObject({ spoolDepth: 1, dropped: 0 });
    keeper.setReachable(true);
    await waitFor(() => c.got.length === 1, 10000, 'kept QoS 0');
    expect(c.got[0]).toMatchObject({ payload: 'kept', qos: 0 });
  });

  test('a full spool evicts QoS 0 oldest first, then refuses and counts', async () => {
    const core = await startCore({ maxSpoolBytes: 100, keepQos0WhenOffline: true });
    const c = await cloud(core);
    core.setReachable(false);
    await core.publish(msg('dcmms/a', 'q0-'.padEnd(30, 'x'), 0)); // 30 bytes
    await core.publish(msg('dcmms/b', 'q1-'.padEnd(60, 'y'), 1)); // 90 bytes
    await core.publish(msg('dcmms/c', 'q1b'.padEnd(30, 'z'), 1)); // evicts the QoS 0 one -> 90
    expect(core.stats()).toMatchObject({ spoolDepth: 2, spoolBytes: 90, dropped: 1, rejected: 0 });
    const full = core.publish(msg('dcmms/d', 'too-much'.padEnd(20, '!'), 1));
    await expect(full).rejects.toBeInstanceOf(IotCoreError);
    await expect(core.publish(msg('dcmms/e', 'x'.repeat(101), 1))).rejects.toThrow(/larger than the size of message spool/);
    expect(core.stats()).toMatchObject({ spoolDepth: 2, spoolBytes: 90, rejected: 2 });
    core.setReachable(true);
    await waitFor(() => c.got.length === 2, 10000, 'drain');
    expect(c.got.map((g) => g.topic)).toEqual(['dcmms/b', 'dcmms/c']);
  });

  test("behaviour 'fail' rejects at once while offline", async () => {
    const core = await startCore({ behaviour: 'fail' });
    core.setReachable(false);
    await expect(core.publish(msg('dcmms/x', 'p', 1))).rejects.toThrow(IotCoreError);
    expect(core.stats()).toMatchObject({ rejected: 1, spooled: 0, spoolDepth: 0 });
    core.setReachable(true);
    await core.publish(msg('dcmms/x', 'p', 1));
    expect(core.stats().published).toBe(1);
  });

  test('IoT Core topic and size limits are enforced before sending', async () => {
    const core = await startCore();
    await expect(core.publish(msg('dcmms/+/x', 'p'))).rejects.toThrow(/wildcard/);
    await expect(core.publish(msg('a/b/c/d/e/f/g/h/i', 'p'))).rejects.toThrow(/forward slashes/);
    await expect(core.publish(msg('t'.repeat(257), 'p'))).rejects.toThrow(/256 bytes/);
    await expect(core.publish({ topicName: 'dcmms/big', qos: 1, payload: Buffer.alloc(128 * 1024 + 1) })).rejects.toThrow(/exceeds/);
    await expect(core.subscribe('a/#/b', 1, () => undefined)).rejects.toThrow(IotCoreError);
    expect(core.stats().rejected).toBe(4);
  });

  test('close is idempotent and later calls fail cleanly', async () => {
    const core = await startCore();
    await core.close();
    await core.close();
    await expect(core.publish(msg('dcmms/x', 'p'))).rejects.toThrow(IotCoreError);
  });
});

describe('IoT Core bridge with an external broker that is down at first', () => {
  let core: IotCore | undefined;
  let server: net.Server | undefined;
  let broker: Aedes | undefined;
  let cloudConn: MqttClient | undefined;

  afterEach(async () => {
    await cloudConn?.endAsync(true);
    await core?.close();
    const b = broker;
    if (b) await new Promise<void>((resolve) => b.close(() => resolve()));
    const s = server;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  });

  test('closes cleanly while the broker is still down', async () => {
    const port = await freePort();
    core = createIotCore({
      broker: { kind: 'external', url: `mqtt://127.0.0.1:${port}`, protocolVersion: 4 },
      clientId: 'thing-never',
      offline: OFFLINE_DEFAULTS,
      logger: silentLogger,
      reconnectPeriodMs: 50,
    });
    await core.start();
    await core.publish(msg('dcmms/x', 'never sent'));
    expect(core.stats()).toMatchObject({ connected: false, spoolDepth: 1 });
    await core.close();
    expect(core.stats()).toMatchObject({ connected: false, spoolDepth: 0 });
  });

  test('behaves as offline, reconnects and drains the spool', async () => {
    const port = await freePort();
    core = createIotCore({
      broker: { kind: 'external', url: `mqtt://127.0.0.1:${port}`, protocolVersion: 4 },
      clientId: 'thing-down',
      offline: OFFLINE_DEFAULTS,
      logger: silentLogger,
      reconnectPeriodMs: 100,
    });
    await core.start();
    expect(core.stats().connected).toBe(false);
    expect(core.reachable).toBe(true);
    await core.publish(msg('dcmms/spooled', 'first'));
    await core.publish(msg('dcmms/spooled', 'second'));
    expect(core.stats()).toMatchObject({ spoolDepth: 2, connected: false });
    const received: string[] = [];
    await core.subscribe('cloud/cmd', 1, (m) => received.push(m.payload.toString()));

    broker = new Aedes();
    const b = broker;
    const got: string[] = [];
    let subscribed = false;
    b.on('publish', (packet, client) => {
      if (client && packet.topic === 'dcmms/spooled') got.push(packet.payload.toString());
    });
    b.on('subscribe', (subs, client) => {
      if (client.id === 'thing-down' && subs.some((s) => s.topic === 'cloud/cmd')) subscribed = true;
    });
    server = net.createServer((sock) => b.handle(sock));
    await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve));
    await waitFor(() => got.length === 2, 20000, 'drain after reconnect');
    expect(got).toEqual(['first', 'second']);
    // The broker sees a publish before its PUBACK reaches the bridge, which then counts it.
    await waitFor(() => core!.stats().published === 2, 10000, 'PUBACKs counted');
    expect(core.stats()).toMatchObject({ connected: true, spoolDepth: 0, published: 2 });

    // The subscription made while the broker was down is sent on connect.
    await waitFor(() => subscribed, 10000, 'subscription on connect');
    cloudConn = await connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, reconnectPeriod: 0 });
    await cloudConn.publishAsync('cloud/cmd', 'hello', { qos: 1 });
    await waitFor(() => received.length === 1, 10000, 'cloud command');
    expect(received).toEqual(['hello']);
  });
});

const MOSQUITTO = '/usr/sbin/mosquitto';
const haveMosquitto = fs.existsSync(MOSQUITTO);
if (!haveMosquitto) {
  // eslint-disable-next-line no-console
  console.log(`note: ${MOSQUITTO} not installed; skipping the external mosquitto (MQTT 5) case`);
}

(haveMosquitto ? describe : describe.skip)('IoT Core bridge with mosquitto (MQTT 5)', () => {
  let proc: ChildProcess | undefined;
  let dir = '';
  let url = '';
  const cores: IotCore[] = [];
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotcore-mosq-'));
    const port = await freePort();
    fs.writeFileSync(path.join(dir, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
    proc = spawn(MOSQUITTO, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
    url = `mqtt://127.0.0.1:${port}`;
    const deadline = Date.now() + 15000;
    for (;;) {
      try {
        const probe = await connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 });
        await probe.endAsync(true);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.endAsync(true);
    for (const core of cores.splice(0)) await core.close();
  });

  afterAll(async () => {
    const p = proc;
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function startCore(clientId: string): Promise<IotCore> {
    const core = createIotCore({ broker: { kind: 'external', url }, clientId, offline: OFFLINE_DEFAULTS, logger: silentLogger });
    cores.push(core);
    await core.start();
    return core;
  }

  test('publishes carry MQTT 5 properties; overlapping filters get one copy each', async () => {
    const core = await startCore('mosq-thing-1');
    const c = await cloudClient(url, 'dcmms/#', 5);
    clients.push(c.client);
    const props: unknown[] = [];
    c.client.on('message', (_t, _p, packet) => props.push(packet.properties));
    await core.publish({
      topicName: 'dcmms/site1/props',
      qos: 1,
      payload: Buffer.from('{"v":1}'),
      userProperties: [{ key: 'schema', value: '1' }],
      contentType: 'application/json',
      payloadFormat: '1',
      correlationData: Buffer.from('corr'),
      responseTopic: 'dcmms/site1/reply',
      messageExpiryIntervalSeconds: 60,
    });
    await waitFor(() => c.got.length === 1, 10000, 'message with properties');
    expect(props[0]).toMatchObject({
      userProperties: { schema: '1' },
      contentType: 'application/json',
      payloadFormatIndicator: true,
      responseTopic: 'dcmms/site1/reply',
    });

    const wide: IotMessage[] = [];
    const narrow: IotMessage[] = [];
    await core.subscribe('ops/#', 1, (m) => wide.push(m));
    await core.subscribe('ops/site1/cmd', 1, (m) => narrow.push(m));
    await c.client.publishAsync('ops/site1/cmd', 'go', { qos: 1, properties: { contentType: 'text/plain' } });
    await c.client.publishAsync('ops/other', 'sentinel', { qos: 1 });
    await waitFor(() => wide.length === 2, 10000, 'wide subscriber');
    expect(wide.map((m) => m.payload.toString())).toEqual(['go', 'sentinel']);
    expect(narrow.map((m) => m.payload.toString())).toEqual(['go']);
    expect(narrow[0].contentType).toBe('text/plain');
  });

  test('offline spool drains in order to mosquitto', async () => {
    const core = await startCore('mosq-thing-2');
    const c = await cloudClient(url, 'dcmms/#', 5);
    clients.push(c.client);
    core.setReachable(false);
    for (let i = 0; i < 20; i++) await core.publish(msg('dcmms/order', String(i)));
    expect(core.stats().spoolDepth).toBe(20);
    core.setReachable(true);
    await waitFor(() => c.got.length === 20, 10000, 'drain');
    expect(c.got.map((g) => g.payload)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });
});
