import type { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { createBus, type Bus } from '../../components/lib/bus';
import { CONTRACT_VERSION, filters, iotTopics, topics, type AlarmMessage, type ComponentHealth, type TopicFilter } from '../../components/lib/contract';
import { ErrorCode, FatalError, InputError } from '../../components/lib/errors';
import type { IpcClientLike } from '../../components/lib/ipc';
import { createLogger, silentLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { FakeClock, settle } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';

// Compile-time check: the real SDK client satisfies the interface the bus is written against.
// (A type-only import: the SDK, and its native binary, is not loaded by this test.)
export const sdkClientFits = (c: greengrasscoreipc.Client): IpcClientLike => c;

const SITE = 's1';

function report(component: string, over: Partial<ComponentHealth> = {}): ComponentHealth {
  const m = createMetrics({ clock: { now: () => 1736942400000 } });
  return {
    schemaVersion: CONTRACT_VERSION,
    siteId: SITE,
    component,
    componentName: 'com.dcmms.edge.X',
    version: '0.1.0',
    state: 'running',
    ts: 1736942400000,
    uptimeMs: 5,
    intervalMs: 10000,
    metrics: m.snapshot(),
    ...over,
  };
}

interface Rig {
  nucleus: FakeNucleus;
  clock: FakeClock;
  metrics: Metrics;
  bus: Bus;
  fatal: FatalError[];
}

function alarm(id: string): AlarmMessage {
  return { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'inv-1', alarmId: id, type: 'over_temperature', severity: 'high', state: 'raised', ts: 1736942400000, source: 'processor' };
}

function rig(opts: { maxQueue?: number; maxCriticalQueue?: number; callTimeoutMs?: number } = {}): Rig {
  const nucleus = new FakeNucleus();
  const clock = new FakeClock();
  const metrics = createMetrics({ clock });
  const fatal: FatalError[] = [];
  const bus = createBus({
    createClient: nucleus.factory,
    logger: silentLogger,
    metrics,
    clock,
    random: () => 0, // backoff = exactly half the base: 50, 100, 200 ms...
    reconnectInitialMs: 100,
    reconnectMaxMs: 1000,
    onFatal: (e) => fatal.push(e),
    ...opts,
  });
  return { nucleus, clock, metrics, bus, fatal };
}

describe('bus', () => {
  let r: Rig;
  beforeEach(async () => {
    r = rig();
    await r.bus.connect();
  });
  afterEach(async () => {
    await r.bus.close();
  });

  test('typed publish sends a jsonMessage on the concrete topic', async () => {
    const out = await r.bus.publish(topics.componentHealth(SITE, 'health'), report('health'));
    expect(out).toBe('sent');
    expect(r.nucleus.published).toHaveLength(1);
    expect(r.nucleus.published[0]?.topic).toBe('site/s1/health/health');
    expect(r.nucleus.published[0]?.message).toMatchObject({ component: 'health', schemaVersion: 1 });
    expect(r.metrics.snapshot().messagesOut).toBe(1);
    expect(r.bus.state).toBe('connected');
  });

  test('publishToIoTCore sends JSON bytes with the requested QoS', async () => {
    await r.bus.publishToIoTCore(iotTopics.events(SITE), { schemaVersion: 1, siteId: SITE, kind: 'events', seq: 1, createdAt: 1, items: [] }, 1);
    const sent = r.nucleus.iotPublished[0];
    expect(sent?.topic).toBe('dcmms/s1/events');
    expect(sent?.qos).toBe('1');
    expect(JSON.parse(sent?.payload.toString('utf8') ?? '')).toMatchObject({ kind: 'events', seq: 1 });
  });

  test('publishToIoTCore refuses payloads over the IoT Core limit', async () => {
    await expect(r.bus.publishToIoTCore(iotTopics.events(SITE), new Uint8Array(128 * 1024 + 1), 0)).rejects.toBeInstanceOf(InputError);
    expect(r.nucleus.iotPublished).toHaveLength(0);
  });

  test('subscribe validates and dispatches with the concrete topic', async () => {
    const got: Array<[ComponentHealth, string]> = [];
    await r.bus.subscribe(filters.componentHealth(SITE), (p, topic) => {
      got.push([p, topic]);
    });
    expect(r.nucleus.topicStreams().map((s) => s.request['topic'])).toEqual(['site/s1/health/+']);
    r.nucleus.inject('site/s1/health/processor', report('processor'));
    r.nucleus.inject('site/s1/health/processor', { ...report('processor'), schemaVersion: 2 });
    r.nucleus.inject('site/s1/health/processor', { hello: 'world' });
    r.nucleus.route(undefined, 'site/s1/health/processor', { binaryMessage: { message: Buffer.from('not json') } });
    r.nucleus.route(undefined, 'site/s1/health/uplink', { binaryMessage: { message: Buffer.from(JSON.stringify(report('uplink'))) } });
    expect(got.map(([p, t]) => [p.component, t])).toEqual([
      ['processor', 'site/s1/health/processor'],
      ['uplink', 'site/s1/health/uplink'],
    ]);
    const snap = r.metrics.snapshot();
    expect(snap.messagesIn).toBe(5);
    expect(snap.rejections).toEqual({ unsupported_schema_version: 1, invalid_payload: 1, not_json: 1 });
  });

  test('a throwing handler is counted and logged, and the bus keeps delivering', async () => {
    const lines: string[] = [];
    const logged = rig();
    const bus = createBus({ createClient: logged.nucleus.factory, logger: createLogger({}, { write: (l) => lines.push(l) }), metrics: logged.metrics, clock: logged.clock });
    await bus.connect();
    let calls = 0;
    await bus.subscribe(filters.componentHealth(SITE), (p) => {
      calls += 1;
      if (p.component === 'boom') throw new Error('handler bug');
      if (p.component === 'async-boom') return Promise.reject(new Error('async handler bug'));
      if (p.component === 'bad-input') throw new InputError('out_of_range', 'value out of range');
      return undefined;
    });
    logged.nucleus.inject('site/s1/health/boom', report('boom'));
    logged.nucleus.inject('site/s1/health/async-boom', report('async-boom'));
    logged.nucleus.inject('site/s1/health/bad-input', report('bad-input'));
    logged.nucleus.inject('site/s1/health/fine', report('fine'));
    await settle();
    expect(calls).toBe(4);
    const snap = logged.metrics.snapshot();
    expect(snap.errors).toBe(2);
    expect(snap.lastError?.code).toBe(ErrorCode.HANDLER_FAILED);
    expect(snap.rejections).toEqual({ out_of_range: 1 });
    expect(lines.some((l) => l.includes('message handler failed') && l.includes('handler bug'))).toBe(true);
    await bus.close();
  });

  test('reconnects with backoff after a disconnection, re-subscribes and flushes the queue in order', async () => {
    const got: string[] = [];
    await r.bus.subscribe(filters.componentHealth(SITE), (p) => {
      got.push(p.component);
    });
    const first = r.nucleus.current;
    r.nucleus.failConnects = 1; // the first reconnect attempt fails too
    r.nucleus.dropLink();
    expect(r.bus.state).toBe('disconnected');
    expect(r.metrics.snapshot().connectionState).toBe('disconnected');

    expect(await r.bus.publish(topics.componentHealth(SITE, 'health'), report('q1'))).toBe('queued');
    expect(await r.bus.publish(topics.componentHealth(SITE, 'health'), report('q2'))).toBe('queued');
    expect(r.metrics.snapshot().queueDepth).toBe(2);

    // attempt 1 after 50 ms (base 100, jitter 0 -> half): fails; attempt 2 after 100 ms more.
    await r.clock.advanceAsync(49);
    expect(r.nucleus.clients).toHaveLength(1);
    await r.clock.advanceAsync(1);
    expect(r.nucleus.clients).toHaveLength(2);
    expect(r.bus.state).toBe('disconnected');
    await r.clock.advanceAsync(99);
    expect(r.nucleus.clients).toHaveLength(2);
    await r.clock.advanceAsync(1);
    expect(r.nucleus.clients).toHaveLength(3);
    expect(r.bus.state).toBe('connected');

    const current = r.nucleus.current;
    expect(current).not.toBe(first);
    expect(r.nucleus.topicStreams().map((s) => s.client)).toEqual([current]);
    expect(r.nucleus.published.map((p) => (p.message as ComponentHealth).component)).toEqual(['q1', 'q2']);
    expect(r.nucleus.published.every((p) => p.from === current)).toBe(true);
    expect(r.metrics.snapshot().queueDepth).toBe(0);

    r.nucleus.inject('site/s1/health/processor', report('processor'));
    expect(got).toEqual(['processor']);
  });

  test('an unexpectedly ended stream triggers a reconnect', async () => {
    await r.bus.subscribe(filters.componentHealth(SITE), () => undefined);
    r.nucleus.topicStreams()[0]?.end();
    expect(r.bus.state).toBe('disconnected');
    await r.clock.advanceAsync(50);
    expect(r.bus.state).toBe('connected');
    expect(r.nucleus.topicStreams()).toHaveLength(1);
  });

  test('the queue is bounded: the oldest are dropped and counted', async () => {
    const small = rig({ maxQueue: 3 });
    await small.bus.connect();
    small.nucleus.dropLink();
    for (const c of ['a', 'b', 'c', 'd', 'e']) await small.bus.publish(topics.componentHealth(SITE, 'health'), report(c));
    expect(small.metrics.snapshot().dropped).toEqual({ queue_overflow: 2 });
    expect(small.metrics.snapshot().queueDepth).toBe(3);
    await small.clock.advanceAsync(50);
    expect(small.nucleus.published.map((p) => (p.message as ComponentHealth).component)).toEqual(['c', 'd', 'e']);
    await small.bus.close();
  });

  test('alarms wait in their own queue: telemetry overflow never evicts them, and they go first', async () => {
    const small = rig({ maxQueue: 3 });
    await small.bus.connect();
    small.nucleus.dropLink();
    await small.bus.publish(topics.alarms(SITE, 'inv-1'), alarm('A1'));
    for (const c of ['a', 'b', 'c', 'd', 'e', 'f']) await small.bus.publish(topics.componentHealth(SITE, 'health'), report(c));
    await small.bus.publish(topics.alarms(SITE, 'inv-1'), alarm('A2'));
    expect(small.metrics.snapshot().dropped).toEqual({ queue_overflow: 3 });
    expect(small.metrics.snapshot().queues).toMatchObject({ ipc: 3, ipc_alarms: 2 });
    await small.clock.advanceAsync(50);
    const sent = small.nucleus.published.map((p) => (p.message as { alarmId?: string; component?: string }).alarmId ?? (p.message as { component: string }).component);
    expect(sent).toEqual(['A1', 'A2', 'd', 'e', 'f']);
    expect(small.bus.criticalDropped).toBe(0);
    await small.bus.close();
  });

  test('the alarm queue is bounded too: its overflow is counted apart, never silent', async () => {
    const small = rig({ maxCriticalQueue: 2 });
    await small.bus.connect();
    small.nucleus.dropLink();
    for (const id of ['A1', 'A2', 'A3']) await small.bus.publish(topics.alarms(SITE, 'inv-1'), alarm(id));
    expect(small.metrics.snapshot().dropped).toEqual({ alarm_queue_overflow: 1 });
    expect(small.bus.criticalDropped).toBe(1);
    await small.clock.advanceAsync(50);
    expect(small.nucleus.published.map((p) => (p.message as AlarmMessage).alarmId)).toEqual(['A2', 'A3']);
    await small.bus.close();
  });

  test('closing while disconnected counts what could not be sent, alarms apart', async () => {
    await r.bus.connect();
    r.nucleus.dropLink();
    await r.bus.publish(topics.alarms(SITE, 'inv-1'), alarm('A9'));
    await r.bus.publish(topics.componentHealth(SITE, 'health'), report('x'));
    await r.bus.close();
    expect(r.metrics.snapshot().dropped).toEqual({ closed: 1, closed_alarms: 1 });
  });

  test('a call the nucleus never answers times out and forces a reconnect', async () => {
    r.nucleus.hang = 'publishToTopic';
    const p = r.bus.publish(topics.componentHealth(SITE, 'health'), report('slow'));
    await r.clock.advanceAsync(10000);
    expect(await p).toBe('queued');
    expect(r.metrics.snapshot().lastError?.code).toBe(ErrorCode.IPC_DISCONNECTED);
    r.nucleus.hang = undefined;
    await r.clock.advanceAsync(50);
    expect(r.bus.state).toBe('connected');
    expect(r.nucleus.published.map((x) => (x.message as ComponentHealth).component)).toEqual(['slow']);
  });

  test('UnauthorizedError is fatal: subscribe rejects, a queued publish reports it', async () => {
    r.nucleus.denied.add('site/s1/health/+');
    await expect(r.bus.subscribe(filters.componentHealth(SITE), () => undefined)).rejects.toMatchObject({ code: ErrorCode.IPC_UNAUTHORIZED });
    r.nucleus.denied.add('site/s1/health/health');
    await expect(r.bus.publish(topics.componentHealth(SITE, 'health'), report('x'))).rejects.toBeInstanceOf(FatalError);
    expect(r.fatal.map((e) => e.code)).toEqual([ErrorCode.IPC_UNAUTHORIZED]);
  });

  test('a custom filter validator is the validation hook', async () => {
    const evens: TopicFilter<{ n: number }> = {
      family: 'test',
      filter: 'test/+',
      validate: (u) =>
        typeof u === 'object' && u !== null && typeof (u as { n?: unknown }).n === 'number' && (u as { n: number }).n % 2 === 0
          ? { ok: true, value: u as { n: number } }
          : { ok: false, reason: 'n: must be even', code: 'invalid_payload' },
    };
    const got: number[] = [];
    await r.bus.subscribe(evens, (p) => {
      got.push(p.n);
    });
    for (const n of [1, 2, 3, 4]) r.nucleus.inject('test/x', { n });
    expect(got).toEqual([2, 4]);
    expect(r.metrics.snapshot().rejections).toEqual({ invalid_payload: 2 });
  });

  test('config, state and component-update wrappers', async () => {
    r.nucleus.config = { siteId: 'a', nested: { k: 1 } };
    expect(await r.bus.getConfiguration()).toEqual({ siteId: 'a', nested: { k: 1 } });
    const changed: string[][] = [];
    await r.bus.subscribeToConfigurationUpdate((kp) => changed.push(kp));
    r.nucleus.configChanged(['siteId']);
    expect(changed).toEqual([['siteId']]);
    await r.bus.updateState('RUNNING');
    expect(r.nucleus.states).toEqual(['RUNNING']);
    const updates: string[] = [];
    await r.bus.subscribeToComponentUpdates((e) => updates.push(`${e.kind}:${e.deploymentId}`));
    r.nucleus.preUpdate('d-1');
    expect(updates).toEqual(['pre:d-1']);
    await r.bus.deferComponentUpdate('d-1', 5000, 'busy');
    expect(r.nucleus.deferrals).toEqual([{ deploymentId: 'd-1', recheckAfterMs: 5000, message: 'busy' }]);
  });

  test('calls while disconnected fail fast with a transient error', async () => {
    r.nucleus.dropLink();
    await expect(r.bus.getConfiguration()).rejects.toMatchObject({ kind: 'transient', code: ErrorCode.IPC_DISCONNECTED });
  });

  test('close is idempotent and releases every stream, the client and every timer', async () => {
    await r.bus.subscribe(filters.componentHealth(SITE), () => undefined);
    await r.bus.subscribeToComponentUpdates(() => undefined);
    const client = r.nucleus.current;
    r.nucleus.dropLink(); // a reconnect timer is now pending
    await r.clock.advanceAsync(50);
    const streams = r.nucleus.current?.streams ?? [];
    expect(streams.length).toBe(2);
    await Promise.all([r.bus.close(), r.bus.close()]);
    expect(streams.every((s) => s.closed)).toBe(true);
    expect(r.nucleus.clients.every((c) => c.closed || c === client)).toBe(true);
    expect(r.bus.state).toBe('closed');
    expect(r.clock.pending).toBe(0);
    await expect(r.bus.publish(topics.componentHealth(SITE, 'health'), report('late'))).rejects.toMatchObject({ code: ErrorCode.BUS_CLOSED });
  });
});
