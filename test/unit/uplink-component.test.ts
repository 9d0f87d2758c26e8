/**
 * The assembled Uplink (`createUplink`) on a real bus over the FakeNucleus, with a FakeClock and a
 * real SQLite outbox: what it subscribes to, what it refuses, what it publishes as its status, and
 * the documented overflow policy on a full outbox (components/uplink/README.md "Bounds").
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createBus } from '../../components/lib/bus';
import type { Bus } from '../../components/lib/bus-types';
import { validateConfig } from '../../components/lib/config';
import { filters, iotTopics, topics, validateUplinkStatus, type AlarmMessage, type AlarmSyncRequest } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { FakeClock, settle } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { UPLINK_DEFAULTS, uplinkConfigSpec, type UplinkConfig } from '../../components/uplink/config';

const UPLINK_DEFAULTS_ROUTES = (): UplinkConfig['routes'] => ({ ...UPLINK_DEFAULTS.routes });
import { ExportError, type ExportBatch, type Exporter } from '../../components/uplink/exporters/types';
import { recordId, siteDay, type SiteRecord } from '../../components/uplink/testing/site-day';
import { createUplink, type Uplink } from '../../components/uplink/uplink';

const SITE = 'unit-site';
const DAY = Date.UTC(2026, 10, 25);

class DownExporter implements Exporter {
  readonly name = 's3';
  up = false;
  sent: ExportBatch[] = [];
  send(b: ExportBatch): Promise<void> {
    if (!this.up) return Promise.reject(new ExportError('S3_500', 'down'));
    this.sent.push(b);
    return Promise.resolve();
  }
  close = () => Promise.resolve();
}

interface Rig {
  nucleus: FakeNucleus;
  bus: Bus;
  clock: FakeClock;
  metrics: Metrics;
  uplink: Uplink;
  s3: DownExporter;
  config: UplinkConfig;
  close(): Promise<void>;
}

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-c-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function rig(over: Partial<UplinkConfig> = {}): Promise<Rig> {
  const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Uplink' });
  const clock = new FakeClock(DAY + 86_400_000);
  const metrics = createMetrics({ clock });
  const bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock });
  await bus.connect();
  const config = validateConfig(uplinkConfigSpec, {
    siteId: SITE,
    statusIntervalMs: 1000,
    exporters: { iotcore: { enabled: true, publishesPerSecond: 50, bytesPerSecond: 262144, concurrency: 8, probeIntervalMs: 1000 }, s3: { enabled: true, bucket: 'b', prefix: 'edge/', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', forcePathStyle: true, concurrency: 4, requestTimeoutMs: 1000, probeIntervalMs: 5000 } },
    ...over,
  });
  const s3 = new DownExporter();
  const uplink = createUplink({ bus, logger: silentLogger, metrics, clock, fail: (e) => { throw e; }, workDir: dir, exporters: { s3 }, random: () => 0.5 }, config);
  await uplink.start();
  return { nucleus, bus, clock, metrics, uplink, s3, config: config as UplinkConfig, close: async () => (await uplink.close(), await bus.close()) };
}

function inject(n: FakeNucleus, r: SiteRecord): void {
  const p = r.payload as { assetId?: string; interval?: '1m' | '15m' | '1d' };
  const topic = r.cls === 'alarms' ? topics.alarms(SITE, p.assetId!) : r.cls === 'events' ? topics.deviceStatus(SITE, p.assetId!) : r.cls === 'health' ? topics.healthSummary(SITE) : topics.aggregates(SITE, p.interval!, p.assetId!);
  n.inject(topic, r.payload);
}

test('subscribes to exactly the contract topics of its classes, once each', async () => {
  const r = await rig();
  const subscribed = r.nucleus.topicStreams().map((s) => String(s.request['topic'])).sort();
  expect(subscribed).toEqual(
    [filters.alarms(SITE), filters.alarmSnapshot(SITE), filters.controlResult(SITE), filters.controlDecision(SITE), filters.analytics(SITE), filters.mlResult(SITE), filters.deviceStatus(SITE), filters.aggregates(SITE, '1m'), filters.aggregates(SITE, '15m'), filters.aggregates(SITE, '1d'), filters.dailySummary(SITE), filters.healthSummary(SITE)]
      .map((f) => f.filter)
      .sort(),
  );
  await r.close();
  expect(r.nucleus.topicStreams()).toHaveLength(0);
  expect(r.clock.pending).toBe(0);
});

test('every class is persisted on receipt; records of another site and invalid payloads are rejected and counted', async () => {
  const r = await rig();
  const day = [...siteDay({ site: SITE, dayStart: DAY, assets: 1 })].filter((x, i) => x.cls !== '1m' || i % 60 === 0);
  for (const x of day) inject(r.nucleus, x);
  // Another site's payload on this site's topic, and a payload that is not an alarm.
  const foreign = { ...(day.find((x) => x.cls === 'alarms')!.payload as object), siteId: 'other-site' };
  r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), foreign);
  r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), { hello: 'world' });
  await settle();
  r.uplink.flush(true);
  const backlog = r.uplink.outbox!.backlog();
  for (const c of ['alarms', 'events', '1m', '15m', '1d', 'health'] as const) expect(backlog[c]).toBe(day.filter((x) => x.cls === c).length);
  const snap = r.metrics.snapshot();
  expect(snap.rejections['site_mismatch']).toBe(1);
  expect(snap.rejections['invalid_payload']).toBe(1);
  await r.close();
});

test('publishes its status (QoS 0, contract UplinkStatus) and reports an exporter going offline', async () => {
  const r = await rig();
  r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), [...siteDay({ site: SITE, dayStart: DAY, assets: 1, classes: ['alarms'] })][0]!.payload);
  await settle();
  await r.clock.advanceAsync(1000);
  const statuses = r.nucleus.iotPublished.filter((p) => p.topic === iotTopics.uplinkStatus(SITE));
  expect(statuses.length).toBeGreaterThan(0);
  for (const s of statuses) expect(String(s.qos)).toBe('0'); // the SDK's QOS enum: '0' = AT_MOST_ONCE
  const last = JSON.parse(statuses[statuses.length - 1]!.payload.toString('utf8')) as unknown;
  const v = validateUplinkStatus(last);
  expect(v.ok).toBe(true);
  if (!v.ok) return;
  expect(v.value.exporters['s3']!.state).toBe('offline'); // the S3 stand-in refused the alarm batch
  expect(v.value.exporters['iotcore']!.state).toBe('online');
  expect(v.value.backlog['alarms']).toBe(1);
  // The alarm reached IoT Core (gzip UplinkBatch) but stays in the outbox for S3.
  const alarms = r.nucleus.iotPublished.filter((p) => p.topic === iotTopics.alarms(SITE));
  expect(alarms).toHaveLength(1);
  expect((JSON.parse(gunzipSync(alarms[0]!.payload).toString('utf8')) as { items: unknown[] }).items).toHaveLength(1);
  expect(r.uplink.healthState!()).toBe('degraded');
  await r.close();
});

test('a full outbox applies the overflow policy: lowest class and oldest first, alarms kept, every drop counted', async () => {
  const r = await rig({ maxOutboxBytes: 65536, routes: { alarms: ['s3'], events: ['s3'], '1m': ['s3'], '15m': ['s3'], '1d': ['s3'], health: ['s3'] } });
  const oneMin = [...siteDay({ site: SITE, dayStart: DAY, assets: 1, classes: ['1m'] })].slice(0, 150);
  const alarms = [...siteDay({ site: SITE, dayStart: DAY, assets: 8, classes: ['alarms'] })].slice(0, 30);
  for (const x of oneMin) inject(r.nucleus, x);
  await settle();
  for (const x of alarms) inject(r.nucleus, x);
  await settle();
  r.uplink.flush(true);
  const ob = r.uplink.outbox!;
  expect(ob.bytes).toBeLessThanOrEqual(65536);
  const dropped = r.uplink.status().dropped;
  expect(dropped['overflow_1m']).toBeGreaterThan(0);
  expect(dropped['overflow_alarms']).toBeUndefined();
  const backlog = ob.backlog();
  expect(backlog.alarms).toBe(alarms.length);
  expect(backlog['1m'] + dropped['overflow_1m']!).toBe(oneMin.length);
  // The metrics carry the same count, so Health sees it.
  expect(r.metrics.snapshot().dropped['overflow']).toBe(dropped['overflow_1m']);
  // What is left of the 1m class is the newest: the oldest went first.
  r.s3.up = true;
  await r.clock.advanceAsync(400_000);
  const kept = r.s3.sent.filter((b) => b.cls === '1m').flatMap((b) => gunzipSync(b.body).toString('utf8').trim().split('\n').map((l) => recordId(JSON.parse(l))));
  expect(kept).toEqual(oneMin.slice(oneMin.length - kept.length).map((x) => x.id));
  expect(r.s3.sent.filter((b) => b.cls === 'alarms').reduce((s, b) => s + b.count, 0)).toBe(alarms.length);
  await r.close();
});

test('a class routed to no enabled exporter is not subscribed to, not stored, and not counted as dropped', async () => {
  const r = await rig({ exporters: { iotcore: { enabled: true, publishesPerSecond: 50, bytesPerSecond: 262144, concurrency: 8, probeIntervalMs: 1000 }, s3: { enabled: false, bucket: '', prefix: 'edge/', endpoint: '', region: 'us-east-1', forcePathStyle: false, concurrency: 4, requestTimeoutMs: 1000, probeIntervalMs: 5000 }, streamManager: UPLINK_DEFAULTS.exporters.streamManager } });
  for (const x of [...siteDay({ site: SITE, dayStart: DAY, assets: 1, classes: ['1m', 'health'] })].slice(0, 20)) inject(r.nucleus, x);
  await settle();
  r.uplink.flush(true);
  expect(r.uplink.outbox!.bytes).toBe(0);
  const subscribed = r.nucleus.topicStreams().map((x) => String(x.request['topic']));
  expect(subscribed).not.toContain(filters.aggregates(SITE, '1m').filter);
  expect(subscribed).not.toContain(filters.healthSummary(SITE).filter);
  expect(subscribed).toContain(filters.aggregates(SITE, '15m').filter);
  // Not forwarding a class is configuration, not data loss: Health must not see drops.
  expect(r.metrics.snapshot().dropped).toEqual({});
  await r.close();
});

describe('alarms: each transition once, and whatever was missed asked for again', () => {
  const JOURNAL = 'journal-1';
  const transition = (alarmId: string, transitionSeq: number, sourceSeq: number, over: Partial<AlarmMessage> = {}): AlarmMessage => ({
    schemaVersion: 1, siteId: SITE, assetId: 'INV-0001', alarmId, type: 'over_temperature', severity: 'high', state: transitionSeq === 2 ? 'cleared' : 'raised',
    ts: DAY + sourceSeq * 1000, source: 'processor', transition: transitionSeq === 0 ? 'raised' : transitionSeq === 2 ? 'cleared' : 'updated', transitionSeq, journalId: JOURNAL, sourceSeq, ...over,
  });
  const syncRequests = (r: Rig): AlarmSyncRequest[] => r.nucleus.published.filter((p) => p.topic === topics.alarmSync(SITE)).map((p) => p.message as AlarmSyncRequest);
  const stored = (r: Rig): string[] => {
    r.uplink.flush(true);
    return r.uplink.outbox!.next(1, new Set(), 1000).flatMap((b) => gunzipSync(r.uplink.outbox!.load(b)!.body).toString('utf8').trim().split('\n')).map((l) => {
      const a = JSON.parse(l) as AlarmMessage;
      return `${a.alarmId}#${a.transitionSeq}`;
    });
  };

  test('at start it asks the alarm sources for what it missed, from where its outbox is complete', async () => {
    const r = await rig();
    expect(syncRequests(r)).toEqual([expect.objectContaining({ requester: 'uplink', from: {} })]);
    r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), transition('A', 0, 1));
    r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), transition('A', 1, 2));
    await settle();
    r.uplink.flush(true);
    await r.close();
    const again = await rig();
    expect(syncRequests(again).at(-1)?.from).toEqual({ processor: { journalId: JOURNAL, seq: 3 } });
    await again.close();
  });

  test('a transition received twice (live, replayed, in a snapshot) is stored once', async () => {
    const r = await rig();
    const a0 = transition('A', 0, 1);
    r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), a0);
    r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), { ...a0, replayed: true });
    await settle();
    r.nucleus.inject(topics.alarmSnapshot(SITE, 'processor'), { schemaVersion: 1, siteId: SITE, source: 'processor', ts: DAY, journalId: JOURNAL, headSeq: 1, oldestSeq: 1, active: [{ ...a0, replayed: true }], page: 1, pages: 1 });
    await settle();
    expect(stored(r)).toEqual(['A#0']);
    expect(r.metrics.snapshot().rejections['duplicate_alarm']).toBe(2);
    await r.close();
  });

  test('a gap in the sequence is asked for at once; the replay fills it', async () => {
    const r = await rig();
    await r.clock.advanceAsync(5000);
    const before = syncRequests(r).length;
    r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), transition('A', 0, 1));
    r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), transition('B', 0, 3));
    await settle();
    expect(syncRequests(r).slice(before).map((q) => q.from)).toEqual([{ processor: { journalId: JOURNAL, seq: 2 } }]);
    r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), transition('A', 1, 2, { replayed: true }));
    await settle();
    expect(r.uplink.alarmSync.position('processor')).toEqual({ journalId: JOURNAL, seq: 3 });
    expect(stored(r).sort()).toEqual(['A#0', 'A#1', 'B#0']);
    await r.close();
  });

  test('a snapshot with a newer head asks for the rest; its active alarms are merged', async () => {
    const r = await rig();
    await r.clock.advanceAsync(5000);
    const before = syncRequests(r).length;
    r.nucleus.inject(topics.alarmSnapshot(SITE, 'processor'), { schemaVersion: 1, siteId: SITE, source: 'processor', ts: DAY, journalId: JOURNAL, headSeq: 7, oldestSeq: 1, active: [{ ...transition('Z', 0, 7), replayed: true }], page: 1, pages: 1 });
    await settle();
    expect(syncRequests(r).slice(before).map((q) => q.from)).toEqual([{ processor: { journalId: JOURNAL, seq: 1 } }]);
    expect(stored(r)).toEqual(['Z#0']);
    await r.close();
  });

  test('transitions the source journal no longer holds are counted as lost, not waited for', async () => {
    const r = await rig();
    r.nucleus.inject(topics.alarmSnapshot(SITE, 'processor'), { schemaVersion: 1, siteId: SITE, source: 'processor', ts: DAY, journalId: JOURNAL, headSeq: 50, oldestSeq: 41, active: [], page: 1, pages: 1 });
    await settle();
    expect(r.metrics.snapshot().dropped['alarm_journal_gap']).toBe(40);
    expect(r.uplink.alarmSync.position('processor')).toEqual({ journalId: JOURNAL, seq: 40 });
    await r.close();
  });

  test('device status heartbeats are not forwarded; changes are', async () => {
    const r = await rig();
    const st = { schemaVersion: 1, siteId: SITE, assetId: 'INV-0001', ts: DAY, state: 'online', lastSeen: DAY, consecutiveFailures: 0 };
    r.nucleus.inject(topics.deviceStatus(SITE, 'INV-0001'), st);
    for (let i = 0; i < 5; i++) r.nucleus.inject(topics.deviceStatus(SITE, 'INV-0001'), { ...st, ts: DAY + i, heartbeat: true });
    await settle();
    r.uplink.flush(true);
    expect(r.uplink.outbox!.backlog().events).toBe(1);
    await r.close();
  });
});

test('a new configuration applies in place: routes change the subscriptions, the outbox and what it holds stay', async () => {
  const r = await rig();
  const before = validateConfig(uplinkConfigSpec, { ...r.config });
  r.nucleus.inject(topics.alarms(SITE, 'INV-0001'), [...siteDay({ site: SITE, dayStart: DAY, assets: 1, classes: ['alarms'] })][0]!.payload);
  await settle();
  const next = validateConfig(uplinkConfigSpec, { ...r.config, routes: { ...r.config.routes, '15m': [], health: [] } });
  const ob = r.uplink.outbox;
  await r.uplink.reconfigure!(next, before);
  expect(r.uplink.outbox).toBe(ob);
  const subscribed = r.nucleus.topicStreams().map((x) => String(x.request['topic']));
  expect(subscribed).not.toContain(filters.aggregates(SITE, '15m').filter);
  expect(subscribed).not.toContain(filters.healthSummary(SITE).filter);
  expect(subscribed).toContain(filters.alarms(SITE).filter);
  expect(subscribed.filter((s) => s === filters.alarms(SITE).filter)).toHaveLength(1);
  expect(r.uplink.outbox!.backlog().alarms).toBe(1);
  await r.close();
});

test('alarms routed by a new configuration: subscribed at once, and the sources asked for what was journaled meanwhile', async () => {
  const r = await rig({ routes: { ...UPLINK_DEFAULTS_ROUTES(), alarms: [] } });
  expect(r.nucleus.topicStreams().map((x) => String(x.request['topic']))).not.toContain(filters.alarms(SITE).filter);
  const before = r.nucleus.published.filter((p) => p.topic === topics.alarmSync(SITE)).length;
  expect(before).toBe(0);
  const next = validateConfig(uplinkConfigSpec, { ...r.config, routes: { ...r.config.routes, alarms: ['iotcore'] } });
  await r.uplink.reconfigure!(next, r.config);
  await settle();
  expect(r.nucleus.topicStreams().map((x) => String(x.request['topic']))).toContain(filters.alarms(SITE).filter);
  expect(r.nucleus.published.filter((p) => p.topic === topics.alarmSync(SITE))).toHaveLength(1);
  await r.close();
});
