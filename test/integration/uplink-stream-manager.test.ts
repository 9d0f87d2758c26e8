/**
 * The Uplink's Stream Manager exporters (docs/uplink.md "Stream Manager") against the local runtime's
 * Stream Manager server (scripts/runtime/stream-manager: protocol 1.1.0, its S3 task exporter to
 * s3rver behind a fault front, its IoT SiteWise recorder) with AWS's own client, the Uplink class on a
 * real outbox, on the real clock:
 *  - every batch reaches S3 under the key the direct S3 exporter gives it, each record once; the task
 *    file is deleted once, and only after, the status stream reported Success;
 *  - S3 unreachable: the exporter goes offline, the health degraded naming the export and its error,
 *    files stay, nothing is appended twice; back: everything arrives once, alarms before the backlog;
 *  - 1-minute and 15-minute rollups are recorded as SiteWise entries with the documented aliases;
 *  - Stream Manager itself away (stopped, restarted on the same store): the Uplink does not crash,
 *    reconnects and the queued tasks' Success statuses are read back (no second upload).
 * The outage of a simulated hour with kill -9 of the Uplink and of the nucleus is in
 * test/integration/uplink-stream-manager-outage.test.ts.
 */
import fs from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import os from 'node:os';
import path from 'node:path';
import { createBus } from '../../components/lib/bus';
import type { Bus } from '../../components/lib/bus-types';
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import { CONTRACT_VERSION, type AlarmMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { UPLINK_DEFAULTS, uplinkConfigSpec, type ExporterName, type UplinkConfig } from '../../components/uplink/config';
import { s3Key } from '../../components/uplink/exporters/s3';
import { sitewiseAlias } from '../../components/uplink/exporters/stream-manager';
import type { BatchMeta } from '../../components/uplink/outbox';
import { recordId, siteDay, type SiteRecord } from '../../components/uplink/testing/site-day';
import { outboxState } from '../../components/uplink/testing/outbox-state';
import { s3TasksPerKey } from '../../components/uplink/testing/sm-tasks';
import { createUplink, type Uplink } from '../../components/uplink/uplink';
import { exporterFactories } from '../../scripts/runtime/stream-manager/exporters';
import { StreamManagerServer } from '../../scripts/runtime/stream-manager/server';
import { startFaultProxy, startS3rver, type FaultProxy, type S3rver } from '../helpers/s3rver';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const SITE = 'sm-site';
const BUCKET = 'uplink-sm';
const THING = 'dcmms_solar-eu_sm-site_gw1';
const TOKEN = 'uplink-token';
const DAY = 86_400_000;
// Yesterday: IoT SiteWise takes values up to 7 days old.
const DAY_START = Math.floor(Date.now() / DAY) * DAY - DAY;

let dir: string;
let s3: S3rver;
let proxy: FaultProxy;
let sm: StreamManagerServer;
let smPort = 0;
let sitewiseFile: string;
let kinesis: { url: string; server: http.Server; client: KinesisClient };
const KINESIS_STREAM = 'dcmms-sm-test';
let nucleus: FakeNucleus;
let bus: Bus;
let metrics: Metrics;
let uplink: Uplink;
let uplinkDeps: Parameters<typeof createUplink>[0];
const delivered: Array<{ exporter: ExporterName; b: BatchMeta; at: number; ms: number }> = [];

async function startSm(port = 0): Promise<StreamManagerServer> {
  const server = new StreamManagerServer({
    storeRoot: path.join(dir, 'sm-store'),
    port,
    authenticateClient: true,
    validateToken: (t) => (t === TOKEN ? 'com.dcmms.edge.Uplink' : undefined),
    log: silentLogger,
    exports: { factories: exporterFactories, retryInitialMs: 100, retryMaxMs: 500, env: { region: 'us-east-1', endpoints: { s3: proxy.url, sitewiseFile, kinesis: kinesis.url } } },
  });
  await server.start();
  return server;
}

function config(): UplinkConfig {
  return validateConfig(uplinkConfigSpec, {
    ...UPLINK_DEFAULTS,
    siteId: SITE,
    batchDelayMs: { alarms: 0, events: 200, '1m': 300, '15m': 300, '1d': 0, health: 300 },
    maxBatchRecords: 20,
    routes: {
      alarms: ['streammanager-s3'],
      events: ['streammanager-s3', 'streammanager-kinesis'],
      '1m': ['streammanager-s3', 'streammanager-sitewise'],
      '15m': ['streammanager-s3', 'streammanager-sitewise'],
      '1d': ['streammanager-s3', 'streammanager-kinesis'],
      health: ['streammanager-s3'],
    },
    exporters: {
      ...UPLINK_DEFAULTS.exporters,
      iotcore: { ...UPLINK_DEFAULTS.exporters.iotcore, enabled: false },
      streamManager: {
        ...UPLINK_DEFAULTS.exporters.streamManager,
        enabled: true,
        port: smPort,
        requestTimeoutMs: 2000,
        taskTimeoutMs: 2000,
        probeIntervalMs: 300,
        s3: { enabled: true, bucket: BUCKET, prefix: 'edge/' },
        sitewise: { enabled: true },
        kinesis: { enabled: true, streamName: KINESIS_STREAM },
      },
    },
    backoffInitialMs: 100,
    backoffMaxMs: 400,
    statusIntervalMs: 300,
  }) as UplinkConfig;
}

function feed(records: readonly SiteRecord[]): void {
  for (const r of records) {
    if (r.cls === 'alarms') uplink.ingestAlarm(r.payload as AlarmMessage);
    else uplink.ingest(r.cls, r.payload);
  }
  // Persisted and sealed now, so the outbox's state is what the tests wait on.
  uplink.flush(true);
}

// Written as <name>.tmp, then renamed: only a renamed file is one a task can name.
const taskFiles = (): string[] => (fs.existsSync(path.join(dir, 'work', 'streammanager-s3')) ? fs.readdirSync(path.join(dir, 'work', 'streammanager-s3')).filter((f) => !f.endsWith('.tmp')) : []);
const pending = (): number => outboxState(path.join(dir, 'work', 'outbox.db')).deliveries;
const okPuts = (): FaultProxy['putLog'] => proxy.putLog.filter((p) => p.status === 200);

/** Every record in S3, counted by id. */
async function s3Records(): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (const lines of (await s3.objects(`edge/${THING}/`)).values()) for (const l of lines) seen.set(recordId(JSON.parse(l)), (seen.get(recordId(JSON.parse(l))) ?? 0) + 1);
  return seen;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-sm-'));
  fs.mkdirSync(path.join(dir, 'work'));
  sitewiseFile = path.join(dir, 'sitewise.ndjson');
  s3 = await startS3rver(BUCKET);
  proxy = await startFaultProxy(s3.url);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const server = (require('kinesalite') as (o: object) => http.Server)({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kurl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  kinesis = { url: kurl, server, client: new KinesisClient({ region: 'us-east-1', endpoint: kurl, credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, requestHandler: new NodeHttpHandler() }) };
  await kinesis.client.send(new CreateStreamCommand({ StreamName: KINESIS_STREAM, ShardCount: 1 }));
  sm = await startSm();
  smPort = sm.port;
  nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Uplink' });
  metrics = createMetrics({ clock: systemClock });
  bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock: systemClock });
  await bus.connect();
  uplinkDeps = {
      bus,
      logger: silentLogger,
      metrics,
      clock: systemClock,
      fail: (e) => {
        throw e;
      },
      workDir: path.join(dir, 'work'),
      thingName: THING,
      streamManagerToken: TOKEN,
      onDelivered: (exporter, b, ms) => delivered.push({ exporter, b, at: Date.now(), ms }),
  };
  uplink = createUplink(uplinkDeps, config());
  await uplink.start();
}, 40_000);

afterAll(async () => {
  await uplink?.close();
  await bus?.close();
  await sm?.close();
  await proxy?.close();
  await s3?.stop();
  kinesis?.client.destroy();
  await new Promise<void>((r) => (kinesis ? kinesis.server.close(() => r()) : r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const hour = (h: number, classes?: SiteRecord['cls'][]): SiteRecord[] =>
  [...siteDay({ site: SITE, dayStart: DAY_START, assets: 2, ...(classes ? { classes } : {}) })].filter((r) => r.at > DAY_START + h * 3600_000 && r.at <= DAY_START + (h + 1) * 3600_000);

test('every batch reaches S3 under the direct exporter\'s key, each record once; task files go only after Success', async () => {
  const records = [...hour(9), ...hour(9, ['1d'])];
  feed(records);
  await waitFor(() => pending() === 0 && outboxState(path.join(dir, 'work', 'outbox.db')).records === 0, 20_000, 'everything delivered').catch((e: unknown) => {
    throw new Error(`${String(e)}: ${JSON.stringify(uplink.status())} ${JSON.stringify(metrics.snapshot())}`);
  });
  const s3Batches = delivered.filter((d) => d.exporter === 'streammanager-s3');
  const outboxId = uplink.outbox!.id;
  const expectedKeys = s3Batches.map((d) => s3Key('edge/', THING, outboxId, { ...d.b, seq: d.b.id })).sort();
  expect(expectedKeys.length).toBeGreaterThan(5);
  const objects = await s3.objects(`edge/${THING}/`);
  expect([...objects.keys()].sort()).toEqual(expectedKeys);
  const seen = await s3Records();
  expect(records.filter((r) => seen.get(r.id) !== 1)).toEqual([]);
  expect(seen.size).toBe(records.length);
  // Each key uploaded once (no task appended twice), and no task file left behind.
  expect(okPuts().length).toBe(expectedKeys.length);
  expect(taskFiles()).toEqual([]);
  const st = uplink.status() as ReturnType<Uplink['status']> & { streamManager?: { connected: boolean; exports: Array<{ stream: string; backlog: number; errorMessage: string | null }> } };
  expect(st.streamManager?.connected).toBe(true);
  await waitFor(() => ((uplink.status() as typeof st).streamManager?.exports ?? []).filter((e) => e.stream.endsWith('-s3')).every((e) => e.backlog === 0 && e.errorMessage === null), 5000, 'export status: nothing left, no error');
  expect(uplink.healthState!()).toBe('running');
  // Diagnostics for docs/uplink.md: how long one send takes through Stream Manager (S3: append the
  // task, the upload, the Success status read back; SiteWise: every entry appended).
  const ms = (e: ExporterName): string => {
    const v = delivered.filter((d) => d.exporter === e).map((d) => d.ms).sort((a, b) => a - b);
    return `n=${v.length} median ${v[Math.floor(v.length / 2)]} ms max ${v.at(-1)} ms`;
  };
  process.stdout.write(`send through Stream Manager: s3 ${ms('streammanager-s3')}; sitewise ${ms('streammanager-sitewise')}\n`);
});

test('1-minute and 15-minute rollups are recorded as SiteWise entries: aliases /dcmms/{site}/{asset}/{point}, the mean at the bucket start', async () => {
  const rollups = hour(9, ['1m', '15m']);
  await waitFor(() => fs.existsSync(sitewiseFile) && fs.readFileSync(sitewiseFile, 'utf8').trim().split('\n').length > 0, 10_000, 'SiteWise entries recorded');
  const expected = new Map<string, number>();
  for (const r of rollups) {
    const p = r.payload as { assetId: string; interval: string; start: number; series: Record<string, { avg: number }> };
    for (const [point, s] of Object.entries(p.series)) expected.set(`${sitewiseAlias(SITE, p.assetId, point, p.interval)}@${p.start / 1000}`, s.avg);
  }
  const got = new Map<string, number>();
  await waitFor(() => {
    got.clear();
    for (const line of fs.readFileSync(sitewiseFile, 'utf8').trim().split('\n')) {
      const e = (JSON.parse(line) as { entry: { propertyAlias: string; propertyValues: Array<{ value: { doubleValue: number }; timestamp: { timeInSeconds: number }; quality: string }> } }).entry;
      for (const v of e.propertyValues) {
        expect(v.quality).toBe('GOOD');
        got.set(`${e.propertyAlias}@${v.timestamp.timeInSeconds}`, v.value.doubleValue);
      }
    }
    return got.size >= expected.size;
  }, 10_000, 'every rollup value recorded');
  expect(new Map([...got].sort())).toEqual(new Map([...expected].sort()));
  expect([...got.keys()].some((k) => k.startsWith(`/dcmms/${SITE}/INV-0001/W@`))).toBe(true);
  expect([...got.keys()].some((k) => k.startsWith(`/dcmms/${SITE}/INV-0001/W/15m@`))).toBe(true);
});

test('S3 unreachable: offline, degraded naming the export, files kept, nothing appended twice; back: everything once, alarms before the backlog', async () => {
  delivered.splice(0);
  const putsBefore = proxy.putLog.length;
  proxy.setDown(true);
  const backlog = hour(10, ['1m', '15m', 'health']);
  feed(backlog);
  // The tasks queued before the outage was noticed wait in Stream Manager; their files stay.
  await waitFor(() => uplink.status().exporters['streammanager-s3']?.state === 'offline', 15_000, 'the exporter offline (no Success within taskTimeoutMs)');
  // Degraded, and the health report's lastError names the export and Stream Manager's error for it.
  await waitFor(() => uplink.healthState!() === 'degraded' && /dcmms-(1m|15m|health)-s3-export/.test(metrics.snapshot().lastError?.message ?? ''), 10_000, 'health degraded naming the failing export');
  const failing = ((uplink.status() as { streamManager?: { exports: Array<{ stream: string; errorMessage: string | null; backlog: number }> } }).streamManager?.exports ?? []).filter((e) => e.errorMessage);
  expect(failing.length).toBeGreaterThan(0);
  expect(failing[0]!.backlog).toBeGreaterThan(0);
  expect(metrics.snapshot().lastError!.message).toContain(failing.find((f) => metrics.snapshot().lastError!.message.includes(f.stream))?.errorMessage ?? '(no export named)');
  const filesDuringOutage = taskFiles();
  expect(filesDuringOutage.length).toBeGreaterThan(0);
  expect(filesDuringOutage.length).toBeLessThanOrEqual(config().exporters.streamManager.concurrency);
  // Alarms while the backlog waits.
  const alarms = hour(6, ['alarms']);
  expect(alarms.length).toBeGreaterThan(0);
  feed(alarms);
  await new Promise((r) => setTimeout(r, 1500)); // several probe intervals of outage with the alarm waiting
  expect(proxy.putLog.slice(putsBefore).filter((p) => p.status === 200)).toEqual([]);
  expect(taskFiles().length).toBeLessThanOrEqual(config().exporters.streamManager.concurrency);

  proxy.setDown(false);
  await waitFor(() => pending() === 0, 30_000, 'the backlog to drain');
  await waitFor(() => taskFiles().length === 0, 5000, 'every task file removed');
  const seen = await s3Records();
  expect([...backlog, ...alarms].filter((r) => seen.get(r.id) !== 1)).toEqual([]);
  // One successful PUT per key: the tasks queued during the outage were not appended again.
  const puts = okPuts().slice(0).filter((p) => proxy.putLog.indexOf(p) >= putsBefore);
  expect(new Set(puts.map((p) => p.path)).size).toBe(puts.length);
  // Alarms first: only tasks already queued in Stream Manager when the outage was noticed (at most
  // concurrency - 1: one slot is the alarms') may go before the alarm batches.
  const firstAlarm = puts.findIndex((p) => p.path.includes('/alarms/'));
  const bulkBefore = puts.slice(0, firstAlarm).filter((p) => !p.path.includes('/alarms/')).length;
  expect(firstAlarm).toBeGreaterThanOrEqual(0);
  expect(bulkBefore).toBeLessThanOrEqual(filesDuringOutage.length);
  expect(puts.filter((p) => !p.path.includes('/alarms/')).length).toBeGreaterThan(bulkBefore);
  await waitFor(() => uplink.healthState!() === 'running', 10_000, 'health running again');
  process.stdout.write(`s3 outage: ${filesDuringOutage.length} tasks queued in Stream Manager during the outage, ${bulkBefore} bulk PUTs before the first alarm PUT of ${puts.length}\n`);
});

/** Tasks per key in the S3 task streams, read with AWS's client. */
const tasksPerKey = (): Promise<Map<string, number>> => s3TasksPerKey(smPort, TOKEN);

test('a restarted Uplink reads the queued tasks back from Stream Manager: it waits for them instead of appending them again', async () => {
  proxy.setDown(true);
  const putsBefore = proxy.putLog.length;
  const records = hour(12, ['1m']);
  feed(records);
  await waitFor(() => taskFiles().length > 0 && uplink.status().exporters['streammanager-s3']?.state === 'offline', 15_000, 'tasks queued and the exporter offline');
  const queued = taskFiles().length;
  const before = await tasksPerKey();
  // A new Uplink on the same work folder and outbox (a restart): its sends of the queued batches time out.
  await uplink.close();
  uplink = createUplink(uplinkDeps, config());
  await uplink.start();
  await waitFor(() => uplink.status().exporters['streammanager-s3']?.state === 'offline', 15_000, 'the restarted Uplink tried and timed out');
  const after = await tasksPerKey();
  expect([...after].filter(([, n]) => n !== 1)).toEqual([]);
  expect(after.size).toBe(before.size);
  proxy.setDown(false);
  await waitFor(() => pending() === 0, 30_000, 'delivered');
  await waitFor(() => taskFiles().length === 0, 5000, 'every task file removed');
  const seen = await s3Records();
  expect(records.filter((r) => seen.get(r.id) !== 1)).toEqual([]);
  const puts = proxy.putLog.slice(putsBefore).filter((p) => p.status === 200);
  expect(new Set(puts.map((p) => p.path)).size).toBe(puts.length);
  expect(queued).toBeGreaterThan(0);
});

test('Stream Manager stopped and restarted on the same store: no crash, reconnect, queued tasks confirmed from their statuses without a second upload', async () => {
  delivered.splice(0);
  const putsBefore = proxy.putLog.length;
  proxy.setDown(true);
  const records = hour(11, ['1m', 'alarms']);
  feed(records);
  await waitFor(() => taskFiles().length > 0, 10_000, 'tasks queued');
  await sm.close();
  // While it is away: nothing crashes, the exporters go offline.
  await waitFor(() => uplink.status().exporters['streammanager-s3']?.state === 'offline', 10_000, 'offline while Stream Manager is away');
  await waitFor(() => (uplink.status() as { streamManager?: { connected: boolean } }).streamManager?.connected === false, 10_000, 'the status saying Stream Manager is not connected');
  sm = await startSm(smPort);
  proxy.setDown(false);
  await waitFor(() => pending() === 0, 30_000, 'everything delivered after the restart');
  await waitFor(() => taskFiles().length === 0, 5000, 'every task file removed');
  const seen = await s3Records();
  expect(records.filter((r) => seen.get(r.id) !== 1)).toEqual([]);
  const puts = proxy.putLog.slice(putsBefore).filter((p) => p.status === 200);
  expect(new Set(puts.map((p) => p.path)).size).toBe(puts.length);
});

test('an alarm is not lost when Stream Manager refuses it: the batch stays in the outbox until a task for it succeeds', async () => {
  const a: AlarmMessage = { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'INV-0001', alarmId: 'sm-refused-1', type: 'string_fault', severity: 'critical', state: 'raised', ts: Date.now(), source: 'processor' };
  await sm.close();
  uplink.ingestAlarm(a);
  uplink.flush(true);
  await new Promise((r) => setTimeout(r, 1000));
  expect(uplink.status().backlog['alarms']).toBe(1);
  expect(uplink.status().exporters['streammanager-s3']!.backlogBatches).toBe(1);
  sm = await startSm(smPort);
  await waitFor(() => pending() === 0, 20_000, 'the alarm delivered');
  expect((await s3Records()).get(recordId(a))).toBe(1);
});

test('a task that fails (its file gone) is a refusal: the batch is sent again as a new task, and arrives once', async () => {
  const putsBefore = proxy.putLog.length;
  proxy.setDown(true);
  const records = hour(13, ['1m']).slice(0, 20);
  feed(records);
  await waitFor(() => taskFiles().length > 0, 10_000, 'a task queued');
  // The file the queued task names disappears: Stream Manager reports Failure for it.
  for (const f of taskFiles()) fs.rmSync(path.join(dir, 'work', 'streammanager-s3', f), { force: true });
  // The store stays away until the Uplink has appended a new task for the failed one: an upload
  // already under way holds the file's bytes, and the S3 client's own retry would deliver them
  // once the store is back.
  await waitFor(async () => [...(await tasksPerKey()).values()].some((n) => n === 2), 20_000, 'a new task for the failed one');
  proxy.setDown(false);
  await waitFor(() => pending() === 0, 30_000, 'delivered by a new task');
  const seen = await s3Records();
  expect(records.filter((r) => seen.get(r.id) !== 1)).toEqual([]);
  const puts = proxy.putLog.slice(putsBefore).filter((p) => p.status === 200);
  expect(new Set(puts.map((p) => p.path)).size).toBe(puts.length);
  expect(taskFiles()).toEqual([]);
  // Two tasks for the failed key: the one that failed and the one that succeeded.
  expect([...(await tasksPerKey()).values()].filter((n) => n === 2)).toHaveLength(1);
});

test('Kinesis: each record of a class routed there is one Kinesis record, the contract payload as JSON; a record above the client\'s message size is counted, not sent', async () => {
  const records = [...siteDay({ site: SITE, dayStart: DAY_START, assets: 2, classes: ['events', '1d'] })];
  expect(records.length).toBeGreaterThan(4);
  feed(records);
  const shard = (await kinesis.client.send(new ListShardsCommand({ StreamName: KINESIS_STREAM }))).Shards![0]!.ShardId!;
  let iterator = (await kinesis.client.send(new GetShardIteratorCommand({ StreamName: KINESIS_STREAM, ShardId: shard, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
  const got: string[] = [];
  await waitFor(async () => {
    const r = await kinesis.client.send(new GetRecordsCommand({ ShardIterator: iterator! }));
    iterator = r.NextShardIterator;
    for (const x of r.Records ?? []) got.push(recordId(JSON.parse(Buffer.from(x.Data!).toString('utf8'))));
    return records.every((rec) => got.includes(rec.id));
  }, 20_000, 'every routed record in Kinesis');
  // The events and daily rollups of the earlier tests were routed there too; none of another class.
  expect(got.filter((id) => !id.startsWith('status:') && !id.startsWith('agg:'))).toEqual([]);
  expect(got.filter((id) => id.startsWith('agg:') && !id.includes(':1d:'))).toEqual([]);
  await waitFor(() => pending() === 0, 20_000, 'delivered everywhere');
  // Kinesis takes at most 1 MiB per record (SM_MAX_MESSAGE_BYTES): a larger one goes to S3, not to Kinesis.
  const big = { ...(records.find((r) => r.cls === 'events')!.payload as object), ts: Date.now(), message: 'x'.repeat(1_100_000) };
  uplink.ingest('events', big);
  uplink.flush(true);
  await waitFor(() => pending() === 0 && metrics.snapshot().dropped['kinesis_too_large'] === 1, 20_000, 'the large record counted for Kinesis and delivered to S3');
  expect((await s3Records()).get(recordId(big))).toBe(1);
});
