/**
 * IPC conformance: the real aws-iot-device-sdk-v2 client against the local nucleus, through every
 * operation the runtime serves (docs/local-runtime.md "IPC" and "The IPC wire protocol").
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import mqtt from 'mqtt';
import type { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { IpcClient, connectIpc } from '../../scripts/runtime/client';
import { Harness, pubsubPolicy, startNucleus } from '../helpers/nucleus';
import { waitFor } from '../helpers/wait';

type Msg = greengrasscoreipc.model.SubscriptionResponseMessage;

const A = 'com.test.A';
const B = 'com.test.B';
const LIMITED = 'com.test.Limited';

function collect(client: IpcClient, topic: string, receiveMode?: string): { messages: Msg[]; op: ReturnType<IpcClient['subscribeToTopic']>; ready: Promise<unknown> } {
  const messages: Msg[] = [];
  const op = client.subscribeToTopic({ topic, receiveMode: receiveMode as never });
  op.on('message', (m: Msg) => messages.push(m));
  return { messages, op, ready: op.activate() };
}

const json = (message: Record<string, unknown>) => ({ jsonMessage: { message } });

function serviceMessage(e: unknown): string {
  const err = e as { serviceError?: { message?: string }; message?: string };
  return err.serviceError?.message ?? err.message ?? String(e);
}

describe('IPC conformance with the real SDK client', () => {
  let h: Harness;
  let a: IpcClient;
  let b: IpcClient;

  beforeAll(async () => {
    h = await startNucleus();
    const all = pubsubPolicy(A, ['PublishToTopic', 'SubscribeToTopic'], ['t/*', 'cfg/*']);
    const status = await h.deploy([
      {
        name: A,
        defaults: { siteId: 's1', nested: { level: 2, list: [1, 2] }, flag: true },
        accessControl: {
          ...all,
          'aws.greengrass.ipc.mqttproxy': {
            [`${A}:mqttproxy:1`]: {
              operations: ['aws.greengrass#PublishToIoTCore', 'aws.greengrass#SubscribeToIoTCore'],
              resources: ['dcmms/s1/#'],
            },
          },
        },
      },
      { name: B, accessControl: pubsubPolicy(B, ['PublishToTopic', 'SubscribeToTopic'], ['t/*']) },
      { name: LIMITED, accessControl: pubsubPolicy(LIMITED, ['SubscribeToTopic'], ['t/+/x', 't/only']) },
    ]);
    expect(status.status).toBe('SUCCEEDED');
    a = await h.client(A);
    b = await h.client(B);
  });

  afterAll(async () => {
    await h.close();
  });

  describe('local pub/sub', () => {
    it('delivers a JSON message with the concrete topic as context', async () => {
      const sub = collect(b, 't/one');
      await sub.ready;
      await a.publishToTopic({ topic: 't/one', publishMessage: json({ v: 1 }) });
      await waitFor(() => sub.messages.length === 1);
      expect(sub.messages[0]!.jsonMessage!.message).toEqual({ v: 1 });
      expect(sub.messages[0]!.jsonMessage!.context!.topic).toBe('t/one');
      await sub.op.close();
    });

    it('delivers binary messages as bytes', async () => {
      const sub = collect(b, 't/bin');
      await sub.ready;
      await a.publishToTopic({ topic: 't/bin', publishMessage: { binaryMessage: { message: Buffer.from([0, 1, 2, 255]) } } });
      await waitFor(() => sub.messages.length === 1);
      expect(Buffer.from(sub.messages[0]!.binaryMessage!.message as ArrayBuffer)).toEqual(Buffer.from([0, 1, 2, 255]));
      await sub.op.close();
    });

    it('matches + one level and # the rest, and a/# does not match a', async () => {
      const plus = collect(b, 't/+/x');
      const hash = collect(b, 't/#');
      await Promise.all([plus.ready, hash.ready]);
      for (const topic of ['t/1/x', 't/1/y', 't/1/x/z', 't']) {
        await a.publishToTopic({ topic, publishMessage: json({ topic }) }).catch(() => undefined);
      }
      await a.publishToTopic({ topic: 't/end', publishMessage: json({ topic: 't/end' }) });
      await waitFor(() => hash.messages.length === 4);
      expect(plus.messages.map((m) => m.jsonMessage!.context!.topic)).toEqual(['t/1/x']);
      expect(hash.messages.map((m) => m.jsonMessage!.context!.topic)).toEqual(['t/1/x', 't/1/y', 't/1/x/z', 't/end']);
      await Promise.all([plus.op.close(), hash.op.close()]);
    });

    it('applies receive modes: wildcard filters skip own messages by default, exact filters do not', async () => {
      const ownWildcard = collect(a, 't/+');
      const ownExact = collect(a, 't/self');
      const ownAll = collect(a, 't/+', 'RECEIVE_ALL_MESSAGES');
      const fromOthers = collect(a, 't/self', 'RECEIVE_MESSAGES_FROM_OTHERS');
      await Promise.all([ownWildcard.ready, ownExact.ready, ownAll.ready, fromOthers.ready]);
      await a.publishToTopic({ topic: 't/self', publishMessage: json({ from: 'a' }) });
      await b.publishToTopic({ topic: 't/self', publishMessage: json({ from: 'b' }) });
      await waitFor(() => ownAll.messages.length === 2 && ownExact.messages.length === 2);
      await waitFor(() => ownWildcard.messages.length === 1 && fromOthers.messages.length === 1);
      expect(ownWildcard.messages[0]!.jsonMessage!.message).toEqual({ from: 'b' });
      expect(fromOthers.messages[0]!.jsonMessage!.message).toEqual({ from: 'b' });
      await Promise.all([ownWildcard.op.close(), ownExact.op.close(), ownAll.op.close(), fromOthers.op.close()]);
    });

    it('refuses wildcards in a publish topic', async () => {
      const e = await a.publishToTopic({ topic: 't/+', publishMessage: json({}) }).catch((x: unknown) => x);
      expect(serviceMessage(e)).toContain('aws.greengrass#InvalidArgumentsError');
      // the connection is still usable
      await a.publishToTopic({ topic: 't/ok', publishMessage: json({}) });
    });

    it('stops delivering after the subscriber closes its stream', async () => {
      const closing = collect(b, 't/close');
      const staying = collect(b, 't/close');
      await Promise.all([closing.ready, staying.ready]);
      await a.publishToTopic({ topic: 't/close', publishMessage: json({ n: 1 }) });
      await waitFor(() => closing.messages.length === 1 && staying.messages.length === 1);
      await closing.op.close();
      await a.publishToTopic({ topic: 't/close', publishMessage: json({ n: 2 }) });
      await waitFor(() => staying.messages.length === 2);
      expect(closing.messages).toHaveLength(1);
      await staying.op.close();
    });

    it('serves many concurrent subscribers in order', async () => {
      const clients = await Promise.all([1, 2, 3, 4].map(() => h.client(B)));
      const subs = clients.flatMap((c) => Array.from({ length: 10 }, () => collect(c, 't/fan')));
      await Promise.all(subs.map((s) => s.ready));
      for (let i = 0; i < 100; i++) await a.publishToTopic({ topic: 't/fan', publishMessage: json({ i }) });
      await waitFor(() => subs.every((s) => s.messages.length === 100), 20000);
      for (const s of subs) expect(s.messages.map((m) => (m.jsonMessage!.message as { i: number }).i)).toEqual([...Array(100).keys()]);
      await Promise.all(subs.map((s) => s.op.close()));
    });

    it('carries a 1 MB message', async () => {
      const sub = collect(b, 't/big');
      await sub.ready;
      const big = 'x'.repeat(1024 * 1024);
      await a.publishToTopic({ topic: 't/big', publishMessage: json({ big }) });
      await waitFor(() => sub.messages.length === 1, 20000);
      expect((sub.messages[0]!.jsonMessage!.message as { big: string }).big.length).toBe(1024 * 1024);
      await sub.op.close();
    });

    it('survives a subscriber process killed mid-stream', async () => {
      // A separate process, configured from the environment exactly as a component is.
      const script = `
        const { greengrasscoreipc } = require('aws-iot-device-sdk-v2');
        const c = greengrasscoreipc.createClient();
        c.connect().then(async () => {
          const op = c.subscribeToTopic({ topic: 't/kill' });
          op.on('message', () => process.stdout.write('m\\n'));
          await op.activate();
          process.stdout.write('ready\\n');
        });`;
      const child = spawn(process.execPath, ['-e', script], {
        cwd: path.resolve(__dirname, '../..'),
        env: { ...process.env, AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT: h.nucleus.socketPath, SVCUID: h.nucleus.tokenFor(B) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor(() => out.includes('ready'), 30000);
      await a.publishToTopic({ topic: 't/kill', publishMessage: json({}) });
      await waitFor(() => out.includes('m\n'));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const sub = collect(b, 't/kill');
      await sub.ready;
      for (let i = 0; i < 20; i++) await a.publishToTopic({ topic: 't/kill', publishMessage: json({ i }) });
      await waitFor(() => sub.messages.length === 20);
      await sub.op.close();
    });
  });

  describe('authorization', () => {
    it('denies a publish outside the policy with UnauthorizedError', async () => {
      const e = await a.publishToTopic({ topic: 'other/topic', publishMessage: json({}) }).catch((x: unknown) => x);
      expect(serviceMessage(e)).toContain(`Principal ${A} is not authorized to perform aws.greengrass.ipc.pubsub:aws.greengrass#PublishToTopic on resource other/topic`);
    });

    it("treats + in a pubsub policy as a literal, not a wildcard", async () => {
      const limited = await h.client(LIMITED);
      const ok = limited.subscribeToTopic({ topic: 't/+/x' });
      await ok.activate();
      await ok.close();
      const denied = limited.subscribeToTopic({ topic: 't/1/x' });
      const e = await denied.activate().catch((x: unknown) => x);
      expect(serviceMessage(e)).toContain('not authorized');
      const pub = await limited.publishToTopic({ topic: 't/only', publishMessage: json({}) }).catch((x: unknown) => x);
      expect(serviceMessage(pub)).toContain('not authorized');
    });

    it('rejects a connection with a wrong token', async () => {
      const e = await connectIpc(h.nucleus.socketPath, 'NOTATOKEN0000000').catch((x: unknown) => x);
      expect(String(e)).toMatch(/connack|handshake/i);
    });
  });

  describe('IoT Core', () => {
    it('publishes to and receives from the IoT Core broker, with MQTT-style policy wildcards', async () => {
      const cloud = await mqtt.connectAsync(h.nucleus.iotCore.brokerUrl, { protocolVersion: 4 });
      try {
        const got: { topic: string; payload: string }[] = [];
        cloud.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }));
        await cloud.subscribeAsync('dcmms/#', { qos: 1 });
        await a.publishToIoTCore({ topicName: 'dcmms/s1/health', qos: '1' as never, payload: Buffer.from('{"ok":true}') });
        await waitFor(() => got.length === 1);
        expect(got[0]).toEqual({ topic: 'dcmms/s1/health', payload: '{"ok":true}' });

        const events: greengrasscoreipc.model.IoTCoreMessage[] = [];
        const op = a.subscribeToIoTCore({ topicName: 'dcmms/s1/commands/#', qos: '1' as never });
        op.on('message', (m) => events.push(m));
        await op.activate();
        await cloud.publishAsync('dcmms/s1/commands/restart', 'now', { qos: 1 });
        await waitFor(() => events.length === 1);
        expect(events[0]!.message!.topicName).toBe('dcmms/s1/commands/restart');
        expect(Buffer.from(events[0]!.message!.payload as ArrayBuffer).toString()).toBe('now');
        await op.close();
      } finally {
        await cloud.endAsync();
      }
    });

    it('answers Not Authorized outside the mqttproxy policy', async () => {
      const e = await a.publishToIoTCore({ topicName: 'dcmms/s2/health', qos: '0' as never, payload: Buffer.from('x') }).catch((x: unknown) => x);
      expect(serviceMessage(e)).toBe('Not Authorized');
      const e2 = await b.publishToIoTCore({ topicName: 'dcmms/s1/health', qos: '0' as never, payload: Buffer.from('x') }).catch((x: unknown) => x);
      expect(serviceMessage(e2)).toBe('Not Authorized');
    });
  });

  describe('IoT Core outage', () => {
    it('spools QoS 1 publishes while the cloud is unreachable, refuses QoS 0, and drains in order when it returns', async () => {
      const cloud = await mqtt.connectAsync(h.nucleus.iotCore.brokerUrl, { protocolVersion: 4 });
      try {
        const got: string[] = [];
        cloud.on('message', (_t, payload) => got.push(payload.toString()));
        await cloud.subscribeAsync('dcmms/s1/outage', { qos: 1 });
        h.nucleus.iotCore.setReachable(false);
        for (let i = 0; i < 5; i++) {
          await a.publishToIoTCore({ topicName: 'dcmms/s1/outage', qos: '1' as never, payload: Buffer.from(`m${i}`) });
        }
        const qos0 = await a.publishToIoTCore({ topicName: 'dcmms/s1/outage', qos: '0' as never, payload: Buffer.from('lost') }).catch((x: unknown) => x);
        expect(serviceMessage(qos0)).toContain('offline');
        expect(h.nucleus.iotCore.stats().spoolDepth).toBe(5);
        expect(got).toEqual([]);
        h.nucleus.iotCore.setReachable(true);
        await waitFor(() => got.length === 5);
        expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
      } finally {
        h.nucleus.iotCore.setReachable(true);
        await cloud.endAsync();
      }
    });
  });

  describe('ValidateAuthorizationToken', () => {
    it("answers Stream Manager's question about a token and refuses anyone else", async () => {
      // aws.greengrass.StreamManager is AWS-provided; the test takes its identity directly.
      const sm = await connectIpc(h.nucleus.socketPath, h.nucleus.tokenFor('aws.greengrass.StreamManager'));
      try {
        expect((await sm.validateAuthorizationToken({ token: h.nucleus.tokenFor(A) })).isValid).toBe(true);
        const bad = await sm.validateAuthorizationToken({ token: 'NOPE' }).catch((x: unknown) => x);
        expect((bad as { serviceError?: { _errorCode?: string } }).serviceError?._errorCode).toBe('InvalidTokenError');
        const denied = await a.validateAuthorizationToken({ token: h.nucleus.tokenFor(B) }).catch((x: unknown) => x);
        expect((denied as { serviceError?: { _errorCode?: string } }).serviceError?._errorCode).toBe('UnauthorizedError');
      } finally {
        await sm.close();
      }
    });
  });

  describe('configuration', () => {
    it('returns the whole document, a container, and a leaf wrapped in its key', async () => {
      const whole = await a.getConfiguration({ keyPath: [] });
      expect(whole.componentName).toBe(A);
      expect(whole.value).toMatchObject({ siteId: 's1', nested: { level: 2, list: [1, 2] }, flag: true });
      expect((await a.getConfiguration({ keyPath: ['nested'] })).value).toEqual({ level: 2, list: [1, 2] });
      expect((await a.getConfiguration({ keyPath: ['siteId'] })).value).toEqual({ siteId: 's1' });
      expect((await a.getConfiguration({ keyPath: ['nested', 'list'] })).value).toEqual({ list: [1, 2] });
    });

    it('reads another component and answers ResourceNotFoundError for a missing key', async () => {
      expect((await b.getConfiguration({ componentName: A, keyPath: ['siteId'] })).value).toEqual({ siteId: 's1' });
      const e = await a.getConfiguration({ keyPath: ['nope'] }).catch((x: unknown) => x);
      expect(serviceMessage(e)).toBe('Key not found');
    });

    it('merges an update, tells subscribers once per changed node, and refuses stale timestamps and accessControl', async () => {
      const events: string[][] = [];
      const op = b.subscribeToConfigurationUpdate({ componentName: A, keyPath: ['nested'] });
      op.on('message', (m) => events.push(m.configurationUpdateEvent!.keyPath));
      await op.activate();
      const now = Date.now() / 1000;
      await a.updateConfiguration({ keyPath: ['nested'], timestamp: new Date(now * 1000), valueToMerge: { level: 3, extra: 'x' } });
      await waitFor(() => events.length === 2);
      expect(events.map((k) => k.join('/')).sort()).toEqual(['nested/extra', 'nested/level']);
      expect((await a.getConfiguration({ keyPath: ['nested'] })).value).toEqual({ level: 3, list: [1, 2], extra: 'x' });

      const stale = await a
        .updateConfiguration({ keyPath: ['nested'], timestamp: new Date((now - 3600) * 1000), valueToMerge: { level: 1 } })
        .catch((x: unknown) => x);
      expect((stale as { serviceError?: { _errorCode?: string } }).serviceError?._errorCode).toBe('FailedUpdateConditionCheckError');
      expect((await a.getConfiguration({ keyPath: ['nested', 'level'] })).value).toEqual({ level: 3 });

      const acl = await a.updateConfiguration({ keyPath: [], timestamp: new Date(), valueToMerge: { accessControl: {} } }).catch((x: unknown) => x);
      expect(serviceMessage(acl)).toContain('accessControl');
      await op.close();
    });
  });

  describe('unsupported operations', () => {
    it("answers the nucleus's not-supported ServiceError", async () => {
      // (GetSecretValue is served now: docs/local-runtime.md "Secrets"; shadows are not.)
      const e = await a.getThingShadow({ thingName: 'x' }).catch((x: unknown) => x);
      expect(serviceMessage(e)).toBe('Operation aws.greengrass#GetThingShadow is not supported by Greengrass');
    });
  });

  describe('CLI operations', () => {
    it('lists components, restarts and stops them for the CLI token and refuses components without a policy', async () => {
      const cli = await connectIpc(h.nucleus.socketPath, h.nucleus.cliToken);
      try {
        const { components } = await cli.listComponents({});
        expect(components!.map((c) => c.componentName).sort()).toEqual([A, B, LIMITED]);
        expect(components!.find((c) => c.componentName === A)!.state).toBe('FINISHED');
        const details = await cli.getComponentDetails({ componentName: A });
        expect(details.componentDetails.version).toBe('1.0.0');
        expect((await cli.restartComponent({ componentName: B })).restartStatus).toBe('SUCCEEDED');
        const missing = await cli.restartComponent({ componentName: 'com.test.Missing' }).catch((x: unknown) => x);
        // The nucleus answers shapes the JS model does not declare for these operations
        // (docs/local-runtime.md "Errors"), which
        // the client reports as an unexpected shape.
        expect(serviceMessage(missing)).toContain('aws.greengrass#ResourceNotFoundError');
        const denied = await a.listComponents({}).catch((x: unknown) => x);
        expect(serviceMessage(denied)).toContain('aws.greengrass#UnauthorizedError');
      } finally {
        await cli.close();
      }
    });
  });
});
