/**
 * The Uplink's Stream Manager exporters, the parts that need no Stream Manager
 * (docs/uplink.md "Stream Manager"):
 *  - configuration: the streamManager block, its ConfigErrors, routes per destination;
 *  - the stream plan: names valid for Stream Manager, export priorities (alarms first), sizes, time to
 *    live and strategy derived from the outbox's bounds;
 *  - rollups to IoT SiteWise entries (alias, entryId, timestamp, quality, the mean, the API's limits);
 *  - the guarded connection around AWS's client, against loopback servers that misbehave in the ways
 *    a real Stream Manager can (not listening, accepting but silent, answering what was not asked):
 *    no unhandled rejection, a deadline on every request, reconnect with backoff.
 * The exporters against the local runtime's Stream Manager: test/integration/uplink-stream-manager*.
 */
import net from 'node:net';
import { validateConfig } from '../../components/lib/config';
import { ConfigError } from '../../components/lib/errors';
import { silentLogger } from '../../components/lib/logger';
import { systemClock } from '../../components/lib/clock';
import { CLASSES } from '../../components/uplink/classes';
import { UPLINK_DEFAULTS, uplinkConfigSpec, type UplinkConfig } from '../../components/uplink/config';
import { SM_PRIORITY, sdkDefinition, sitewiseAlias, sitewiseEntries, streamPlan, SITEWISE_MAX_AGE_MS } from '../../components/uplink/exporters/stream-manager';
import { sm, SmConnection, SmUnavailableError } from '../../components/uplink/exporters/stream-manager-client';
import { siteDay } from '../../components/uplink/testing/site-day';
import cbor from 'cbor';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBus } from '../../components/lib/bus';
import { createMetrics } from '../../components/lib/metrics';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { createUplink } from '../../components/uplink/uplink';
import { waitFor } from '../helpers/wait';

const SITE = 'sm-site';
const NOW = Date.UTC(2026, 10, 26, 12);

function withSm(over: Partial<UplinkConfig['exporters']['streamManager']> = {}, routes: Partial<UplinkConfig['routes']> = {}): unknown {
  return {
    ...UPLINK_DEFAULTS,
    siteId: SITE,
    routes: {
      alarms: ['iotcore', 'streammanager-s3', 'streammanager-kinesis'],
      events: ['iotcore', 'streammanager-s3'],
      '1m': ['streammanager-s3', 'streammanager-sitewise'],
      '15m': ['iotcore', 'streammanager-s3', 'streammanager-sitewise'],
      '1d': ['iotcore', 'streammanager-s3'],
      health: ['streammanager-s3'],
      ...routes,
    },
    exporters: {
      ...UPLINK_DEFAULTS.exporters,
      streamManager: {
        ...UPLINK_DEFAULTS.exporters.streamManager,
        enabled: true,
        s3: { enabled: true, bucket: 'data', prefix: 'fleets/f/' },
        sitewise: { enabled: true },
        kinesis: { enabled: true, streamName: 'dcmms-f' },
        ...over,
      },
    },
  };
}

describe('configuration', () => {
  test('Stream Manager is off by default and a full configuration validates', () => {
    expect(UPLINK_DEFAULTS.exporters.streamManager.enabled).toBe(false);
    const c = validateConfig(uplinkConfigSpec, withSm());
    expect(c.exporters.streamManager.s3.bucket).toBe('data');
  });

  test.each([
    ['a bucket for the S3 export', withSm({ s3: { enabled: true, bucket: '', prefix: 'x/' } }), 'exporters.streamManager.s3.bucket'],
    ['a Kinesis stream name', withSm({ kinesis: { enabled: true, streamName: 'no/slash' } }), 'exporters.streamManager.kinesis.streamName'],
    ['one S3 path per class', withSm({}, { alarms: ['s3', 'streammanager-s3'] }), 'routes.alarms'],
  ])('ConfigError naming the key: %s', (_what, raw, key) => {
    let err: unknown;
    try {
      validateConfig(uplinkConfigSpec, raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).key).toBe(key);
  });

  test.each([
    ['SiteWise takes rollups of 1m and 15m only', withSm({}, { alarms: ['streammanager-sitewise'] })],
    ['IoT Core has no health topic', withSm({}, { health: ['iotcore'] })],
    ['stream names allow letters, digits, space , . - _ only', withSm({ streamPrefix: 'dcmms/' })],
    ['the port is a TCP port', withSm({ port: 70000 })],
  ])('refused: %s', (_what, raw) => {
    expect(() => validateConfig(uplinkConfigSpec, raw)).toThrow(ConfigError);
  });
});

describe('stream plan', () => {
  const c = validateConfig(uplinkConfigSpec, withSm()) as UplinkConfig;
  const plan = streamPlan({ sm: c.exporters.streamManager, routes: c.routes, maxOutboxBytes: c.maxOutboxBytes, maxAgeMs: c.maxAgeMs });

  test('one stream per routed class and destination, plus the status stream; names valid for Stream Manager', () => {
    expect(plan.map((p) => p.name).sort()).toEqual(
      [
        ...CLASSES.map((cls) => `dcmms-${cls}-s3`),
        'dcmms-1m-sitewise',
        'dcmms-15m-sitewise',
        'dcmms-alarms-kinesis',
        'dcmms-s3-status',
      ].sort(),
    );
    for (const p of plan) expect(p.name).toMatch(/^[\w ,.\-_]{1,255}$/);
  });

  test('export priorities keep alarms first: 1 for alarms ... 10 for health, in the outbox class order', () => {
    expect(plan.find((p) => p.name === 'dcmms-alarms-s3')!.priority).toBe(1);
    expect(plan.find((p) => p.name === 'dcmms-health-s3')!.priority).toBe(10);
    const ps = CLASSES.map((cls) => SM_PRIORITY[cls]);
    expect(ps).toEqual([...ps].sort((a, b) => a - b));
    expect(new Set(ps).size).toBe(ps.length);
  });

  test('sizes and strategy from the outbox bounds: TTL = maxAgeMs, RejectNewData for alarms and every S3 task stream, bulk overwrites oldest', () => {
    for (const p of plan) {
      expect(p.timeToLiveMillis).toBe(c.maxAgeMs);
      expect(p.timeToLiveMillis).toBeGreaterThanOrEqual(60000);
      expect(p.maxSize).toBeGreaterThanOrEqual(1024);
      expect(p.streamSegmentSize).toBeLessThanOrEqual(p.maxSize);
      expect(p.streamSegmentSize).toBeGreaterThanOrEqual(1024);
      if (p.kind === 's3' || p.cls === 'alarms' || p.cls === 'events') expect(p.strategyOnFull).toBe('RejectNewData');
    }
    expect(plan.find((p) => p.name === 'dcmms-1m-sitewise')!.strategyOnFull).toBe('OverwriteOldestData');
    // The data streams share maxOutboxBytes by class; the task streams hold only tasks.
    const data = plan.filter((p) => p.kind === 'sitewise' || p.kind === 'kinesis');
    expect(data.reduce((s, p) => s + p.maxSize, 0)).toBeLessThanOrEqual(c.maxOutboxBytes);
    expect(plan.find((p) => p.name === 'dcmms-1m-s3')!.maxSize).toBeLessThanOrEqual(64 * 1024 * 1024);
    // Every class to both SiteWise (where it may) and Kinesis: still within the bound.
    const all = validateConfig(uplinkConfigSpec, withSm({}, { '1m': ['streammanager-s3', 'streammanager-sitewise', 'streammanager-kinesis'], '15m': ['streammanager-sitewise', 'streammanager-kinesis'], '1d': ['streammanager-kinesis'], health: ['streammanager-kinesis'], events: ['streammanager-kinesis'] })) as UplinkConfig;
    const allPlan = streamPlan({ sm: all.exporters.streamManager, routes: all.routes, maxOutboxBytes: all.maxOutboxBytes, maxAgeMs: all.maxAgeMs });
    const dataAll = allPlan.filter((p) => p.kind === 'sitewise' || p.kind === 'kinesis');
    expect(dataAll).toHaveLength(8);
    expect(dataAll.reduce((s, p) => s + p.maxSize, 0)).toBeLessThanOrEqual(all.maxOutboxBytes);
  });

  test('the definitions pass the SDK validation (what it would send)', () => {
    for (const p of plan) {
      const def = sdkDefinition(p, { sm: c.exporters.streamManager, statusStream: 'dcmms-s3-status' });
      expect(() => sm.util.validateAndSerializeToJsonBytes(def)).not.toThrow();
      const map = (def as { asMap(): Record<string, unknown> }).asMap();
      expect(map['strategyOnFull']).toBe(p.strategyOnFull === 'RejectNewData' ? 0 : 1);
      if (p.kind === 's3') expect(JSON.stringify(map['exportDefinition'])).toContain('"statusStreamName":"dcmms-s3-status"');
    }
  });

  test('nothing is planned while the master switch is off', () => {
    const off = { ...c.exporters.streamManager, enabled: false };
    expect(streamPlan({ sm: off, routes: c.routes, maxOutboxBytes: c.maxOutboxBytes, maxAgeMs: c.maxAgeMs })).toEqual([]);
  });
});

describe('IoT SiteWise entries', () => {
  const day = NOW - 3600_000;
  const lines = [...siteDay({ site: SITE, dayStart: Date.UTC(2026, 10, 26), assets: 1, classes: ['1m'] })].filter((r) => r.at <= day).slice(-25).map((r) => JSON.stringify(r.payload));

  test('one value per point and minute: the mean, at the bucket start in seconds and nanos, GOOD; aliases /dcmms/{site}/{asset}/{point}', () => {
    const conv = sitewiseEntries(SITE, lines, NOW);
    const entries = conv.messages.map((m) => JSON.parse(m.toString('utf8')) as { entryId: string; propertyAlias: string; propertyValues: Array<{ value: { doubleValue: number }; timestamp: { timeInSeconds: number; offsetInNanos: number }; quality: string }> });
    expect(conv.values).toBe(25 * 10);
    // 10 points, 25 minutes each: 3 entries per alias (10 + 10 + 5 values).
    expect(entries).toHaveLength(30);
    const first = JSON.parse(lines[0]!) as { assetId: string; start: number; series: Record<string, { avg: number }> };
    const w = entries.find((e) => e.propertyAlias === `/dcmms/${SITE}/${first.assetId}/W`)!;
    expect(w.propertyValues[0]).toEqual({ value: { doubleValue: first.series['W']!.avg }, timestamp: { timeInSeconds: first.start / 1000, offsetInNanos: 0 }, quality: 'GOOD' });
    for (const e of entries) {
      expect(e.entryId).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
      expect(e.propertyValues.length).toBeLessThanOrEqual(10);
      const ts = e.propertyValues.map((v) => v.timestamp.timeInSeconds);
      expect(ts).toEqual([...ts].sort((a, b) => a - b));
    }
    expect(new Set(entries.map((e) => e.entryId)).size).toBe(entries.length);
    // Deterministic: the same batch again gives the same ids.
    expect(sitewiseEntries(SITE, lines, NOW).messages.map((m) => JSON.parse(m.toString()).entryId)).toEqual(entries.map((e) => e.entryId));
  });

  test('15-minute means go to their own alias, so the two intervals never write the same (alias, time)', () => {
    expect(sitewiseAlias(SITE, 'INV-1', 'W', '1m')).toBe(`/dcmms/${SITE}/INV-1/W`);
    expect(sitewiseAlias(SITE, 'INV-1', 'W', '15m')).toBe(`/dcmms/${SITE}/INV-1/W/15m`);
  });

  test('what SiteWise would reject is not sent and is counted: older than 7 days, no mean, not a rollup; a later revision wins', () => {
    const base = JSON.parse(lines[0]!) as Record<string, unknown> & { series: Record<string, Record<string, unknown>> };
    const old = { ...base, start: NOW - SITEWISE_MAX_AGE_MS - 60_000 };
    const noMean = { ...base, start: (base['start'] as number) + 3600_000, series: { W: { count: 0 } } };
    const rev1 = { ...base, revision: 1, series: { W: { ...base.series['W'], avg: 42 } } };
    const conv = sitewiseEntries(SITE, [JSON.stringify(old), JSON.stringify(noMean), 'not json', JSON.stringify({ alarmId: 'a' }), JSON.stringify(rev1), JSON.stringify(base)], NOW);
    expect(conv.skipped).toEqual({ tooOld: 10, noValue: 1, tooNew: 0, notAggregate: 2 });
    const w = conv.messages.map((m) => JSON.parse(m.toString())).find((e) => e.propertyAlias.endsWith('/W'));
    expect(w.propertyValues).toHaveLength(1);
    expect(w.propertyValues[0].value.doubleValue).toBe(42);
  });
});

// ---------------------------------------------------------------------------------------------
// The guarded connection, against misbehaving loopback servers.

type Mode = 'ok' | 'silent-handshake' | 'no-answers' | 'wrong-request-id';

interface FakeSm {
  port: number;
  connections: number;
  requests: number;
  mode: Mode;
  close(): Promise<void>;
}

/** Speaks just enough of the protocol: the connect byte and ConnectResponse, ListStreams answers (or not). */
async function fakeSm(mode: Mode): Promise<FakeSm> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, requests: 0, mode };
  const frame = (op: number, body: unknown): Buffer => {
    const payload = cbor.encode(body);
    const head = Buffer.alloc(5);
    head.writeInt32BE(payload.length + 1, 0);
    head.writeInt8(op, 4);
    return Buffer.concat([head, payload]);
  };
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    state.connections++;
    let buf = Buffer.alloc(0);
    let connected = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!connected) {
        if (buf.length < 1) return;
        buf = buf.subarray(1); // connect version byte
      }
      while (buf.length >= 5) {
        const len = buf.readInt32BE(0);
        if (buf.length < 4 + len) return;
        const op = buf.readInt8(4);
        const body = cbor.decodeFirstSync(buf.subarray(5, 4 + len)) as { requestId: string };
        buf = buf.subarray(4 + len);
        if (op === 1) {
          if (state.mode === 'silent-handshake') return;
          connected = true;
          s.write(Buffer.from([1]));
          s.write(frame(6, { requestId: body.requestId, status: 0, protocolVersion: '1.1.0', serverVersion: 'fake' }));
          continue;
        }
        state.requests++;
        if (state.mode === 'no-answers') continue;
        const requestId = state.mode === 'wrong-request-id' ? 'nobody-asked' : body.requestId;
        if (op === 11) s.write(frame(12, { requestId, status: 0, streams: ['a'] }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    get requests() {
      return state.requests;
    },
    get mode() {
      return state.mode;
    },
    set mode(m: Mode) {
      state.mode = m;
    },
    close: () => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))),
  } as FakeSm;
}

function connection(port: number, over: Partial<ConstructorParameters<typeof SmConnection>[0]> = {}): SmConnection {
  return new SmConnection({ clock: systemClock, logger: silentLogger, resolvePort: () => Promise.resolve(port), authToken: 'token', requestTimeoutMs: 300, backoffInitialMs: 200, backoffMaxMs: 400, random: () => 1, ...over });
}

const list = (c: SmConnection): Promise<string[]> => c.call('ListStreams', (x) => x.listStreams());

describe('guarded Stream Manager connection', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => void process.off('unhandledRejection', onUnhandled));
  beforeEach(() => void unhandled.splice(0));

  test('nothing listening: the request fails with SM_UNAVAILABLE, no unhandled rejection; reconnects wait the backoff', async () => {
    const s = await fakeSm('ok');
    const port = s.port;
    await s.close(); // the port is free now: connection refused
    const c = connection(port);
    await expect(list(c)).rejects.toMatchObject({ code: 'SM_UNAVAILABLE' });
    // Within the backoff the next request fails at once, without a connection attempt.
    const t0 = Date.now();
    await expect(list(c)).rejects.toThrow(/next connect in/);
    expect(Date.now() - t0).toBeLessThan(100);
    expect(c.stats.connectFailures).toBe(1);
    await new Promise((r) => setTimeout(r, 50)); // let any stray rejection surface
    expect(unhandled).toEqual([]);
    c.close();
  });

  test('a server that accepts but never completes the handshake: connect times out', async () => {
    const s = await fakeSm('silent-handshake');
    const c = connection(s.port);
    await expect(list(c)).rejects.toThrow(SmUnavailableError);
    expect(c.connected).toBe(false);
    c.close();
    await s.close();
    expect(unhandled).toEqual([]);
  });

  test('a request nobody answers times out, the connection is replaced, the next request works on a new one', async () => {
    const s = await fakeSm('no-answers');
    const c = connection(s.port);
    await expect(list(c)).rejects.toThrow(/did not answer ListStreams within 300 ms/);
    expect(c.stats.timeouts).toBe(1);
    expect(c.connected).toBe(false);
    s.mode = 'ok';
    await new Promise((r) => setTimeout(r, 250)); // past the reconnect backoff
    await expect(list(c)).resolves.toEqual(['a']);
    expect(s.connections).toBe(2);
    c.close();
    await s.close();
    expect(unhandled).toEqual([]);
  });

  test('an answer to a request nobody made (the SDK read loop dies on it): the connection is dropped, not left hanging', async () => {
    const s = await fakeSm('wrong-request-id');
    const c = connection(s.port);
    await expect(list(c)).rejects.toThrow(SmUnavailableError);
    s.mode = 'ok';
    await new Promise((r) => setTimeout(r, 250));
    await expect(list(c)).resolves.toEqual(['a']);
    expect(s.connections).toBe(2);
    c.close();
    await s.close();
    expect(unhandled).toEqual([]);
  });

  test('server answers (a status code) keep the connection', async () => {
    const s = await fakeSm('ok');
    const c = connection(s.port);
    await expect(list(c)).resolves.toEqual(['a']);
    // Client-side validation (a bad stream name) is not a connection failure either.
    await expect(c.call('AppendMessage', (x) => x.appendMessage('bad/name', Buffer.from('x')))).rejects.toBeInstanceOf(sm.ValidationException);
    expect(c.connected).toBe(true);
    expect(s.connections).toBe(1);
    c.close();
    await s.close();
  });
});

describe('the assembled Uplink with Stream Manager away', () => {
  test('not running: the component keeps running, reports it, keeps the data; turning Stream Manager off in place closes it all', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-sm-unit-'));
    const down = await fakeSm('ok');
    const port = down.port;
    await down.close(); // nothing listens there now
    const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Uplink' });
    const metrics = createMetrics({ clock: systemClock });
    const bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock: systemClock });
    await bus.connect();
    const raw = withSm({ port, requestTimeoutMs: 300, probeIntervalMs: 200 }) as UplinkConfig;
    const config = validateConfig(uplinkConfigSpec, { ...raw, statusIntervalMs: 200, backoffInitialMs: 50, backoffMaxMs: 200 }) as UplinkConfig;
    const uplink = createUplink({ bus, logger: silentLogger, metrics, clock: systemClock, fail: (e) => { throw e; }, workDir: dir, thingName: 'dcmms_f_s_1', streamManagerToken: 'token' }, config);
    await uplink.start();
    uplink.ingest('1m', JSON.parse(sitewiseLines()[0]!));
    uplink.flush(true);
    await waitFor(() => uplink.status().exporters['streammanager-s3']?.state === 'offline', 5000, 'the Stream Manager exporters offline');
    expect(uplink.healthState!()).toBe('degraded');
    expect((uplink.status() as { streamManager?: { connected: boolean; lastError: string | null } }).streamManager).toMatchObject({ connected: false, lastError: expect.stringMatching(/ECONNREFUSED|no connection/) });
    expect(uplink.status().backlog['1m']).toBe(1);
    // Off in place: the Stream Manager exporters and their connection go; the batch waits for an exporter that is routed.
    await uplink.reconfigure!({ ...config, exporters: { ...config.exporters, streamManager: { ...config.exporters.streamManager, enabled: false } } }, config);
    expect(uplink.status().exporters['streammanager-s3']?.state).toBe('disabled');
    expect((uplink.status() as { streamManager?: unknown }).streamManager).toBeUndefined();
    const t0 = Date.now();
    await uplink.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    await bus.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

function sitewiseLines(): string[] {
  return [...siteDay({ site: SITE, dayStart: NOW - 86_400_000, assets: 1, classes: ['1m'] })].slice(0, 1).map((r) => JSON.stringify(r.payload));
}

