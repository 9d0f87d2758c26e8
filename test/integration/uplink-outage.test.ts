/**
 * A cloud outage of a simulated day (docs/uplink.md "Tests"), with the Uplink as a real process: the esbuild
 * bundle of components/uplink/main.ts (what ships), its outbox on disk, its real SDK IPC client
 * connected to the local runtime, S3 credentials from the runtime's Token Exchange Service.
 *
 *  1. IoT Core unreachable (`setReachable(false)`) and S3 answering 500s.
 *  2. A simulated day of every class (alarms, events, 1m/15m/1d rollups, health) is published on the
 *     contract's local topics, in production order; half-way through, the Uplink is SIGKILLed once
 *     everything published so far is in its outbox, and restarted.
 *  3. The cloud returns (S3 now slow: 100 ms per request, a WAN). In the middle of the drain the
 *     Uplink is SIGKILLed again (batches in flight, some already stored but not confirmed) and
 *     restarted; live alarms are published while the backlog is still draining.
 *  Then: every record is in S3 exactly once (counted by id over every object), every IoT-routed
 *  record reached the cloud's MQTT broker (duplicates only as a repeated batch `seq`), the drain ran
 *  in priority order, and each live alarm left within 1 s on both exporters. Nothing was dropped.
 *
 * Time compression: the records are the simulated day's (timestamps across 24 h, the rates of a 10k-
 * point site after aggregation, components/uplink/testing/site-day.ts) at SCALE: ASSETS inverters of
 * the site's 1000, i.e. 0.2 % of the rollup volume, and 100-record batches (so this day makes about
 * 40 batches, as a full one makes thousands). The day is produced in a few seconds of real time while
 * the cloud is out; the Uplink runs on its real clock, because pacing, backoff and the 1 s
 * live-alarm guarantee are real-time properties.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildSync } from 'esbuild';
import { connectAsync, type MqttClient } from 'mqtt';
import { accessControlFor, CONTRACT_VERSION, topics, validateUplinkBatch, type AlarmMessage, type UplinkStatus } from '../../components/lib/contract';
import { CLASSES, classIndex, type RecordClass } from '../../components/uplink/classes';
import { UPLINK_DEFAULTS } from '../../components/uplink/config';
import { recordId, siteDay, type SiteRecord } from '../../components/uplink/testing/site-day';
import type { IpcClient } from '../../scripts/runtime/client';
import { startNucleus, pubsubPolicy, type Harness } from '../helpers/nucleus';
import { startFaultProxy, startS3rver, type FaultProxy, type S3rver } from '../helpers/s3rver';
import { waitFor } from '../helpers/wait';
import { outboxState as readOutbox, type OutboxState } from '../../components/uplink/testing/outbox-state';

jest.setTimeout(55_000);

const ROOT = path.resolve(__dirname, '../..');
const SITE = 'outage-site';
const UPLINK = 'com.dcmms.edge.Uplink';
const PUBLISHER = 'com.test.SitePublisher';
const BUCKET = 'uplink-outage';
const ASSETS = 2;
const DAY_START = Date.UTC(2026, 10, 25);
const IOT_CLASSES: readonly RecordClass[] = CLASSES.filter((c) => UPLINK_DEFAULTS.routes[c].includes('iotcore'));

let h: Harness;
let s3: S3rver;
let proxy: FaultProxy;
let cloud: MqttClient;
let publisher: IpcClient;
let dir: string;
let bundle: string;
let workDir: string;
const children: ChildProcess[] = [];
const cloudGot: Array<{ topic: string; at: number; seq: number; kind: string; ids: string[] }> = [];
/** The Uplink's status reports as the cloud got them. */
const statusGot: Array<{ at: number; status: UplinkStatus }> = [];

function uplinkConfig(): Record<string, unknown> {
  return {
    ...UPLINK_DEFAULTS,
    siteId: SITE,
    metricsIntervalMs: 1000,
    batchDelayMs: { alarms: 0, events: 200, '1m': 500, '15m': 500, '1d': 0, health: 500 },
    maxBatchRecords: 100,
    exporters: {
      iotcore: UPLINK_DEFAULTS.exporters.iotcore,
      s3: { enabled: true, bucket: BUCKET, prefix: 'edge/', endpoint: proxy.url, region: 'us-east-1', forcePathStyle: true, concurrency: 4, requestTimeoutMs: 5000 },
    },
    backoffInitialMs: 100,
    backoffMaxMs: 400,
    statusIntervalMs: 1000,
  };
}

/** The bundle as its own process, with the environment the nucleus gives a component. Resolves once it reports running. */
async function startUplink(): Promise<ChildProcess> {
  const token = h.nucleus.tokenFor(UPLINK);
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  Object.assign(env, {
    NODE_PATH: path.join(ROOT, 'node_modules'),
    AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT: h.nucleus.socketPath,
    SVCUID: token,
    AWS_CONTAINER_AUTHORIZATION_TOKEN: token,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: h.nucleus.tes!.url,
    AWS_IOT_THING_NAME: h.nucleus.thingName,
    AWS_REGION: 'us-east-1',
  });
  const child = spawn(process.execPath, [bundle], { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/"msg":"running"/.test(out)) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`uplink exited ${code} ${signal} before running: ${out.slice(-2000)} ${err}`)));
  });
  return child;
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/** What the Uplink's outbox file holds now. */
function outboxState(): OutboxState {
  return readOutbox(path.join(workDir, 'outbox.db'));
}

async function publishAll(records: readonly SiteRecord[]): Promise<void> {
  const topicOf = (r: SiteRecord): string => {
    const p = r.payload as { assetId?: string; interval?: '1m' | '15m' | '1d' };
    switch (r.cls) {
      case 'alarms':
        return topics.alarms(SITE, p.assetId!);
      case 'events':
        return topics.deviceStatus(SITE, p.assetId!);
      case 'health':
        return topics.healthSummary(SITE);
      default:
        return topics.aggregates(SITE, p.interval!, p.assetId!);
    }
  };
  for (let i = 0; i < records.length; i += 200) {
    await Promise.all(records.slice(i, i + 200).map((r) => publisher.publishToTopic({ topic: topicOf(r), publishMessage: { jsonMessage: { message: r.payload } } })));
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync('/tmp/uplink-outage-');
  workDir = path.join(dir, 'work');
  fs.mkdirSync(workDir);
  bundle = path.join(dir, 'main.js');
  buildSync({ entryPoints: [path.join(ROOT, 'components/uplink/main.ts')], bundle: true, platform: 'node', target: 'node20', packages: 'external', outfile: bundle, logLevel: 'error' });
  s3 = await startS3rver(BUCKET);
  proxy = await startFaultProxy(s3.url);
  h = await startNucleus({ tes: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', lifetimeMs: 3600_000 } });
  const deployed = await h.deploy([
    // No lifecycle: the test starts (and kills) the Uplink's process itself; the nucleus holds its configuration and policies.
    { name: UPLINK, defaults: uplinkConfig(), accessControl: accessControlFor(UPLINK) as Record<string, unknown> },
    { name: PUBLISHER, accessControl: pubsubPolicy(PUBLISHER, ['PublishToTopic'], [`site/${SITE}/*`]) },
  ]);
  expect(deployed.status).toBe('SUCCEEDED');
  publisher = await h.client(PUBLISHER);
  cloud = await connectAsync(h.nucleus.iotCore.brokerUrl, { clientId: 'test-cloud', reconnectPeriod: 0 });
  cloud.on('message', (topic, payload) => {
    if (!topic.startsWith(`dcmms/${SITE}/`)) return;
    if (topic.endsWith('/uplink/status')) return void statusGot.push({ at: Date.now(), status: JSON.parse(payload.toString('utf8')) as UplinkStatus });
    const v = validateUplinkBatch(JSON.parse(gunzipSync(payload).toString('utf8')));
    if (!v.ok) throw new Error(`cloud got an invalid batch on ${topic}: ${v.reason}`);
    cloudGot.push({ topic, at: Date.now(), seq: v.value.seq, kind: v.value.interval ?? v.value.kind, ids: v.value.items.map(recordId) });
  });
  await cloud.subscribeAsync(`dcmms/${SITE}/#`, { qos: 1 });
}, 40_000);

afterAll(async () => {
  for (const c of children) await kill9(c);
  await cloud?.endAsync(true);
  await h?.close();
  await proxy?.close();
  await s3?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a simulated day of outage with two kill -9: everything arrives once, in priority order; live alarms within 1 s', async () => {
  const day = [...siteDay({ site: SITE, dayStart: DAY_START, assets: ASSETS })];
  const half = day.filter((r) => r.at <= DAY_START + 12 * 3600_000);
  const rest = day.slice(half.length);
  let uplink = await startUplink();

  // 1. The cloud goes away.
  h.nucleus.iotCore.setReachable(false);
  proxy.fail500(Number.POSITIVE_INFINITY);

  // 2. The first half of the day, then kill -9 once all of it is persisted, restart, the second half.
  await publishAll(half);
  await waitFor(() => outboxState().records === half.length, 20_000, 'first half persisted');
  await kill9(uplink);
  uplink = await startUplink();
  await publishAll(rest);
  // Persisted and sealed (the last events/rollups wait out their batchDelayMs): the backlog is complete.
  await waitFor(() => ((o) => o.records === day.length && o.unsealed === 0)(outboxState()), 20_000, 'the whole day persisted and sealed');
  expect(proxy.putLog.filter((p) => p.status === 200)).toHaveLength(0);
  expect(cloudGot).toHaveLength(0);

  // 3. The cloud returns (S3 slow); kill -9 mid-drain, restart, live alarms while the backlog drains.
  proxy.setDelayMs(100);
  proxy.fail500(0);
  h.nucleus.iotCore.setReachable(true);
  const stored = (): number => proxy.putLog.filter((p) => p.status === 200).length;
  await waitFor(() => stored() >= 6, 15_000, 'the drain to start');
  await kill9(uplink);
  const inFlightAtKill = proxy.putLog.filter((p) => p.status === 0).length;
  uplink = await startUplink();
  const live: Array<{ alarm: AlarmMessage; at: number; putsBefore: number }> = [];
  for (let k = 0; k < 3; k++) {
    const before = stored();
    await waitFor(() => stored() >= before + 3, 15_000, 'more of the drain');
    const alarm: AlarmMessage = { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'INV-0001', alarmId: `live-${k}`, type: 'string_fault', severity: 'critical', state: 'raised', ts: Date.now(), source: 'processor' };
    live.push({ alarm, at: Date.now(), putsBefore: stored() });
    await publisher.publishToTopic({ topic: topics.alarms(SITE, 'INV-0001'), publishMessage: { jsonMessage: { message: alarm } } });
  }
  await waitFor(() => outboxState().deliveries === 0, 30_000, 'the backlog to drain');
  const final = outboxState();
  expect(final).toEqual({ records: 0, unsealed: 0, deliveries: 0, dropped: 0 });

  // Every record in S3 exactly once, counted by id over every object.
  const objects = new Map([...(await s3.objects(`edge/${h.nucleus.thingName}/`))].filter(([k]) => !k.includes('/probe/'))); // data objects, not the S3 probe's
  const seen = new Map<string, number>();
  for (const lines of objects.values()) for (const l of lines) seen.set(recordId(JSON.parse(l)), (seen.get(recordId(JSON.parse(l))) ?? 0) + 1);
  const expected = [...day.map((r) => r.id), ...live.map((l) => recordId(l.alarm))];
  expect(seen.size).toBe(expected.length);
  expect(expected.filter((id) => seen.get(id) !== 1)).toEqual([]);
  // The kill mid-drain left PUTs in flight: some keys were written twice, each overwrote itself.
  const putsPerKey = new Map<string, number>();
  for (const p of proxy.putLog.filter((x) => x.status === 200 && !x.path.includes('/probe/'))) putsPerKey.set(p.path, (putsPerKey.get(p.path) ?? 0) + 1);
  expect(putsPerKey.size).toBe(objects.size);

  // Priority order of the drain (first PUT of each batch; live alarms excluded): alarms, events, 1m, 15m, 1d, health.
  const liveKeys = new Set<string>();
  for (const [key, lines] of objects) if (lines.some((l) => String((JSON.parse(l) as { alarmId?: string }).alarmId).startsWith('live-'))) liveKeys.add(key);
  const firstPuts: string[] = [];
  for (const p of proxy.putLog.filter((x) => x.status === 200 && !x.path.includes('/probe/'))) if (!firstPuts.includes(p.path)) firstPuts.push(p.path);
  const classSeq = firstPuts.filter((k) => !liveKeys.has(k.replace(`/${BUCKET}/`, ''))).map((k) => classIndex(k.split('/')[4] as RecordClass));
  expect(classSeq.length).toBeGreaterThan(30);
  expect(classSeq).toEqual([...classSeq].sort((a, b) => a - b));

  // IoT Core: every routed record arrived; a repeated delivery carries the same seq (the cloud's de-duplication key).
  const bySeq = new Map<string, string[]>();
  for (const m of cloudGot) {
    const prev = bySeq.get(`${m.kind}:${m.seq}`);
    if (prev) expect(prev).toEqual(m.ids);
    else bySeq.set(`${m.kind}:${m.seq}`, m.ids);
  }
  const iotIds = [...bySeq.values()].flat();
  const iotExpected = [...day.filter((r) => IOT_CLASSES.includes(r.cls)).map((r) => r.id), ...live.map((l) => recordId(l.alarm))];
  expect(new Set(iotIds).size).toBe(iotIds.length);
  expect([...iotIds].sort()).toEqual([...iotExpected].sort());
  // Order of first arrivals (a batch re-sent after the kill arrives again later, with its seq).
  const firstArrivals = cloudGot.filter((m, i) => cloudGot.findIndex((x) => x.kind === m.kind && x.seq === m.seq) === i);
  const repeats = cloudGot.length - firstArrivals.length;
  const iotOrder = firstArrivals.filter((m) => !m.ids.some((id) => id.includes(':live-'))).map((m) => classIndex(m.kind as RecordClass));
  expect(iotOrder).toEqual([...iotOrder].sort((a, b) => a - b));

  // Live alarms: out within 1 s on both exporters, while the backlog was still draining.
  for (const l of live) {
    const id = recordId(l.alarm);
    const mqtt = cloudGot.find((m) => m.ids.includes(id));
    const key = [...liveKeys].find((k) => objects.get(k)!.some((line) => recordId(JSON.parse(line)) === id))!;
    const put = proxy.putLog.find((p) => p.path === `/${BUCKET}/${key}`)!;
    expect(mqtt!.at - l.at).toBeLessThan(1000);
    expect(put.receivedAt - l.at).toBeLessThan(1000);
    expect(proxy.putLog.filter((p) => p.status === 200 && p.receivedAt > put.receivedAt && !liveKeys.has(p.path.replace(`/${BUCKET}/`, ''))).length).toBeGreaterThan(0);
  }
  // Diagnostics for docs/uplink.md.
  process.stdout.write(`outage: ${day.length} records, ${objects.size} objects, ${proxy.putLog.length} PUTs (${inFlightAtKill} in flight at the mid-drain kill), ${cloudGot.length} MQTT batches (${repeats} repeated); live alarm latency mqtt ${live.map((l) => cloudGot.find((m) => m.ids.includes(recordId(l.alarm)))!.at - l.at).join('/')} ms\n`);
});

test('after an outage the drain starts within seconds of the return of the cloud, whatever the backoff (probes, not retries, notice it)', async () => {
  for (const c of children.splice(0)) await kill9(c);
  // A backoff of 150-300 s after the first failed send: without probes, the drain would wait it out.
  const updated = await h.run({ configuration: { [UPLINK]: { merge: { backoffInitialMs: 300_000, backoffMaxMs: 300_000 }, reset: [] } } });
  expect(updated.status).toBe('SUCCEEDED');
  h.nucleus.iotCore.setReachable(false);
  proxy.fail500(Number.POSITIVE_INFINITY);
  proxy.setDelayMs(0);
  const uplink = await startUplink();
  const alarms = [...siteDay({ site: SITE, dayStart: DAY_START + 86_400_000, assets: ASSETS, classes: ['alarms', '15m'] })].slice(0, 40);
  await publishAll(alarms);
  await waitFor(() => ((o) => o.records === alarms.length && o.unsealed === 0)(outboxState()), 20_000, 'the records persisted and sealed');
  // Both exporters tried, failed and are backing off (minutes), probing meanwhile.
  await waitFor(() => proxy.putLog.some((p) => p.status === 500 && !p.path.includes('/probe/')), 10_000, 'a failed S3 send');
  await new Promise((r) => setTimeout(r, 3000)); // an outage of a few probe intervals
  const cloudMark = cloudGot.length;
  const putMark = proxy.putLog.length;
  const back = Date.now();
  proxy.fail500(0);
  h.nucleus.iotCore.setReachable(true);
  await waitFor(() => cloudGot.length > cloudMark && proxy.putLog.slice(putMark).some((p) => p.status === 200 && !p.path.includes('/probe/')), 15_000, 'the first batch on both exporters');
  const iotAfter = cloudGot[cloudMark]!.at - back;
  const s3After = proxy.putLog.slice(putMark).find((p) => p.status === 200 && !p.path.includes('/probe/'))!.receivedAt - back;
  expect(iotAfter).toBeLessThan(10_000);
  expect(s3After).toBeLessThan(10_000);
  await waitFor(() => outboxState().deliveries === 0, 20_000, 'the backlog to drain');
  // Once online, the status no longer carries the outage's error.
  await waitFor(() => statusGot.some((s) => s.at > back && s.status.exporters['iotcore']?.state === 'online' && s.status.exporters['s3']?.state === 'online'), 10_000, 'a status with both exporters online');
  const last = statusGot.filter((s) => s.at > back).at(-1)!.status;
  expect(last.exporters['iotcore']?.lastError).toBeNull();
  expect(last.exporters['s3']?.lastError).toBeNull();
  process.stdout.write(`cloud return: first IoT Core batch after ${iotAfter} ms, first S3 object after ${s3After} ms (backoff 150-300 s)\n`);
  await kill9(uplink);
});
