/**
 * The pipeline through a cloud outage with a kill -9 of the Processor and of the Uplink in the middle
 * (docs/uplink.md "Tests"; docs/alarms.md), with what ships: the BUILT Processor and Uplink (greengrass-build/
 * recipes and esbuild bundles) deployed into the local runtime, which starts them as its own
 * processes, restarts them when they die, and serves the Uplink's S3 credentials from its TES.
 *
 *  - IoT Core is unreachable from before the Uplink starts (so no batch can slip into the nucleus's
 *    in-memory spool inside the Uplink's probe window, docs/uplink.md "Delivery confirmation"), and the
 *    S3 front answers 500s.
 *  - A simulated adapter (a recipe-less test component allowed only to publish raw telemetry and
 *    device status) polls four inverters every 100 ms on a regular sample grid; the test drives
 *    `103.TmpCab` of three of them across the default over-temperature rule (75 °C, deadband 2) up and
 *    down, so the Processor raises and clears alarms. A second identity, allowed only to subscribe,
 *    records every alarm (and every processed message) the Processor publishes locally.
 *  - With alarms active, the Processor's process is SIGKILLed; the nucleus sees it ERRORED and starts
 *    it again (RUNNING via UpdateState). The active alarms must survive: not raised again on more hot
 *    samples, cleared later with their original ids (docs/processor.md "Active alarms survive a
 *    restart").
 *  - Once the outbox holds everything published so far, the Uplink's process is SIGKILLed and restarted.
 *  - The cloud returns. Every alarm (and device-status event) the pipeline produced reaches the cloud's
 *    MQTT broker (gzip UplinkBatch JSON, de-duplicated by batch `seq`) exactly as recorded locally,
 *    alarms before the lower-priority events, and every record is in S3 exactly once.
 *
 * Needs `npm run build` first (npm test does it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { connectAsync, type MqttClient } from 'mqtt';
import {
  CONTRACT_VERSION,
  filters,
  iotTopics,
  pubsubResource,
  topics,
  validateAlarm,
  validateUplinkBatch,
  type AlarmMessage,
  type ComponentHealth,
  type DeviceStatus,
  type TelemetryMessage,
} from '../../components/lib/contract';
import { classIndex, type RecordClass } from '../../components/uplink/classes';
import { UPLINK_DEFAULTS } from '../../components/uplink/config';
import { version } from '../../package.json';
import type { IpcClient } from '../../scripts/runtime/client';
import type { ServiceState } from '../../scripts/runtime/component-lifecycle';
import { startNucleus, pubsubPolicy, type Harness } from '../helpers/nucleus';
import { startFaultProxy, startS3rver, type FaultProxy, type S3rver } from '../helpers/s3rver';
import { componentPids as componentPidsIn } from '../helpers/processes';
import { waitFor } from '../helpers/wait';
import { outboxState as readOutbox, type OutboxState } from '../../components/uplink/testing/outbox-state';

jest.setTimeout(55_000);

const BUILD = path.resolve(__dirname, '../../greengrass-build');
const SITE = 'pipeline-site';
const PROCESSOR = 'com.dcmms.edge.Processor';
const UPLINK = 'com.dcmms.edge.Uplink';
const ADAPTER = 'com.test.SimAdapter';
const RECORDER = 'com.test.AlarmRecorder';
const BUCKET = 'pipeline-outage';
/** Three inverters cycle across the threshold; INV-04 stays cool and must never alarm. */
const CYCLING = ['INV-01', 'INV-02', 'INV-03'] as const;
const ASSETS = [...CYCLING, 'INV-04'] as const;
const HOT = 80; // above the default limit, 75 °C
const COOL = 60; // below limit - deadband, 73 °C
/** The simulated adapter's poll period: samples are on a regular grid, so the Processor never interpolates. */
const POLL_MS = 100;

let h: Harness;
let s3: S3rver;
let proxy: FaultProxy;
let cloud: MqttClient;
let adapter: IpcClient;
let recorder: IpcClient;
let bundleDir: string;

/** Every lifecycle transition the nucleus made, in order. */
const states: Array<{ name: string; state: ServiceState; at: number }> = [];
/** What the Processor published locally, as the recorder got it. */
const alarms: AlarmMessage[] = [];
const processed: Array<{ assetId: string; ts: number; tmp: unknown }> = [];
/** The components' own health reports: the first one `running` (or `degraded`: the Uplink with its exporters offline) comes after start() subscribed. */
const health: ComponentHealth[] = [];
/** Device status events the adapter published (the lower-priority `events` class). */
const statuses: DeviceStatus[] = [];
/** What the cloud's MQTT broker got from the Uplink. */
const cloudGot: Array<{ topic: string; kind: string; seq: number; items: unknown[] }> = [];
/** Invalid payloads seen by the recorder or the cloud (asserted empty; a throw in a listener would only crash the worker). */
const invalid: string[] = [];

/** Record identity in the Uplink's payloads: an alarm transition, or a device status. */
function recordKey(p: unknown): string {
  const r = p as Record<string, unknown>;
  if (typeof r['alarmId'] === 'string') return `alarm:${r['alarmId']}:${String(r['state'])}:${String(r['ts'])}`;
  return `status:${String(r['assetId'])}:${String(r['ts'])}`;
}

/** pids of a component's node process. */
function componentPids(name: string): number[] {
  return componentPidsIn(h.nucleus.rootDir, name, version);
}

/**
 * Resolves once a process of the component started at or after `since` is ready: its first health
 * report. The nucleus marks a `Run` step RUNNING as soon as it is launched (the component's own
 * UpdateState RUNNING, sent once it has subscribed, changes nothing), and a deployment SUCCEEDS on
 * that; runComponent publishes the first report after start(), i.e. after every subscription.
 */
async function awaitReady(name: string, since: number): Promise<void> {
  await waitFor(() => health.some((r) => r.componentName === name && (r.state === 'running' || r.state === 'degraded') && r.ts - r.uptimeMs >= since), 20_000, `${name} (started after ${since}) to report running`);
}

/** SIGKILL the component's process; resolves once the nucleus has seen it ERRORED and has it RUNNING again in a new process, and that process is ready. */
async function kill9AndAwaitRestart(name: string): Promise<void> {
  const pids = componentPids(name);
  expect(pids).toHaveLength(1);
  const mark = states.length;
  const killedAt = Date.now();
  process.kill(pids[0]!, 'SIGKILL');
  await waitFor(
    () => {
      const after = states.slice(mark).filter((s) => s.name === name);
      const errored = after.findIndex((s) => s.state === 'ERRORED');
      return errored >= 0 && after.slice(errored + 1).some((s) => s.state === 'RUNNING');
    },
    20_000,
    `${name} ERRORED, then RUNNING again`,
  );
  await awaitReady(name, killedAt);
  const now = componentPids(name);
  expect(now).toHaveLength(1);
  expect(now[0]).not.toBe(pids[0]);
}

/** What the Uplink's outbox file holds now. */
function outboxState(): OutboxState {
  return readOutbox(path.join(h.nucleus.rootDir, 'work', UPLINK, 'outbox.db'));
}

/** The simulated adapter: one raw telemetry message per asset every POLL_MS of sample time, `103.TmpCab` as the test sets it. */
function startAdapter(): { temps: Map<string, number>; stop: () => Promise<void> } {
  const temps = new Map<string, number>(ASSETS.map((a) => [a, COOL]));
  const t0 = Date.now();
  let running = true;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    for (let round = 0; running; round++) {
      const ts = t0 + round * POLL_MS;
      // A poller's period, not a wait for a condition; after a stall it catches up on the same grid.
      if (ts > Date.now()) await new Promise<void>((r) => ((wake = r), setTimeout(r, ts - Date.now())));
      if (!running) break;
      await Promise.all(
        ASSETS.map((assetId) => {
          const msg: TelemetryMessage = {
            schemaVersion: CONTRACT_VERSION,
            siteId: SITE,
            assetId,
            ts,
            seq: round,
            points: { '103.TmpCab': { v: temps.get(assetId)!, u: 'Cel', q: 'good' }, '103.W': { v: 40_000 + round, u: 'W', q: 'good' } },
          };
          return adapter.publishToTopic({ topic: topics.rawTelemetry(SITE, assetId), publishMessage: { jsonMessage: { message: msg } } });
        }),
      );
    }
  })();
  return {
    temps,
    stop: async () => {
      running = false;
      wake?.();
      await loop;
    },
  };
}

async function publishStatuses(): Promise<void> {
  const ts = Date.now();
  for (const assetId of ASSETS) {
    const st: DeviceStatus = { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId, ts, state: 'online', lastSeen: ts, consecutiveFailures: 0 };
    statuses.push(st);
    await adapter.publishToTopic({ topic: topics.deviceStatus(SITE, assetId), publishMessage: { jsonMessage: { message: st } } });
  }
}

const alarmsOf = (assetId: string): AlarmMessage[] => alarms.filter((a) => a.assetId === assetId);

/** Drive the cycling assets hot or cool; resolves once each has raised (cleared) its alarm and the Processor has processed a few more samples. */
async function phase(sim: ReturnType<typeof startAdapter>, hot: boolean): Promise<void> {
  const before = new Map(CYCLING.map((a) => [a, alarmsOf(a).length]));
  for (const a of CYCLING) sim.temps.set(a, hot ? HOT : COOL);
  await waitFor(() => CYCLING.every((a) => alarmsOf(a).length === before.get(a)! + 1), 10_000, `every cycling asset ${hot ? 'raised' : 'cleared'}`);
  const since = Math.max(...alarms.slice(-CYCLING.length).map((a) => a.ts));
  // More samples on the same side of the threshold: these must not transition again (checked at the end).
  await waitFor(() => CYCLING.every((a) => processed.filter((p) => p.assetId === a && p.ts > since).length >= 3), 10_000, 'more samples processed');
}

beforeAll(async () => {
  const recipe = (name: string): string => path.join(BUILD, 'recipes', `${name}-${version}.yaml`);
  if (![PROCESSOR, UPLINK].every((n) => fs.existsSync(recipe(n)))) throw new Error('greengrass-build/ has no Processor or Uplink recipe: run `npm run build` (npm test does)');
  // A private copy of the two components: a concurrent `npm run build` rewrites greengrass-build/.
  bundleDir = fs.mkdtempSync('/tmp/pipeline-outage-');
  for (const name of [PROCESSOR, UPLINK]) {
    fs.mkdirSync(path.join(bundleDir, 'recipes'), { recursive: true });
    fs.copyFileSync(recipe(name), path.join(bundleDir, 'recipes', path.basename(recipe(name))));
    fs.cpSync(path.join(BUILD, 'artifacts', name), path.join(bundleDir, 'artifacts', name), { recursive: true });
  }
  s3 = await startS3rver(BUCKET);
  proxy = await startFaultProxy(s3.url);
  h = await startNucleus({ tes: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', lifetimeMs: 3600_000 } });
  h.nucleus.services.on('state', (name: string, state: ServiceState) => states.push({ name, state, at: Date.now() }));

  cloud = await connectAsync(h.nucleus.iotCore.brokerUrl, { clientId: 'test-cloud', reconnectPeriod: 0 });
  cloud.on('message', (topic, payload) => {
    if (topic === iotTopics.uplinkStatus(SITE)) return;
    const v = validateUplinkBatch(JSON.parse(gunzipSync(payload).toString('utf8')));
    if (!v.ok) return void invalid.push(`the cloud got an invalid batch on ${topic}: ${v.reason}`);
    cloudGot.push({ topic, kind: v.value.kind, seq: v.value.seq, items: v.value.items });
  });
  await cloud.subscribeAsync(`dcmms/${SITE}/#`, { qos: 1 });

  // The outage starts before the Uplink does: nothing it sends can be confirmed by the nucleus's spool.
  h.nucleus.iotCore.setReachable(false);
  proxy.fail500(Number.POSITIVE_INFINITY);

  const ids = await h.deploy([
    {
      name: ADAPTER,
      accessControl: pubsubPolicy(ADAPTER, ['PublishToTopic'], [pubsubResource('rawTelemetry', { siteId: SITE }), pubsubResource('deviceStatus', { siteId: SITE })]),
    },
    {
      name: RECORDER,
      accessControl: pubsubPolicy(RECORDER, ['SubscribeToTopic'], [pubsubResource('alarms', { siteId: SITE }), pubsubResource('processedTelemetry', { siteId: SITE }), pubsubResource('componentHealth', { siteId: SITE })]),
    },
  ]);
  expect(ids.status).toBe('SUCCEEDED');
  adapter = await h.client(ADAPTER);
  recorder = await h.client(RECORDER);
  const subAlarms = recorder.subscribeToTopic({ topic: filters.alarms(SITE).filter });
  subAlarms.on('message', (m) => {
    const v = validateAlarm(m.jsonMessage?.message);
    // Copies sent again from the Processor's journal (sync replays) are not new transitions.
    if (v.ok && v.value.replayed !== true) alarms.push(v.value);
    else if (!v.ok) invalid.push(`the Processor published an invalid alarm: ${v.reason}`);
  });
  const subProcessed = recorder.subscribeToTopic({ topic: filters.processedTelemetry(SITE).filter });
  subProcessed.on('message', (m) => {
    const t = m.jsonMessage?.message as TelemetryMessage;
    processed.push({ assetId: t.assetId, ts: t.ts, tmp: t.points['103.TmpCab']?.v });
  });
  const subHealth = recorder.subscribeToTopic({ topic: filters.componentHealth(SITE).filter });
  subHealth.on('message', (m) => void health.push(m.jsonMessage?.message as ComponentHealth));
  await Promise.all([subAlarms.activate(), subProcessed.activate(), subHealth.activate()]);

  const deployedAt = Date.now();
  const deployed = await h.run({
    recipeDirectoryPath: path.join(bundleDir, 'recipes'),
    artifactsDirectoryPath: path.join(bundleDir, 'artifacts'),
    rootComponentsToAdd: { [PROCESSOR]: version, [UPLINK]: version },
    configuration: {
      [PROCESSOR]: { merge: { siteId: SITE, assets: [...ASSETS], metricsIntervalMs: 1000, alarmSnapshotIntervalMs: 2000 }, reset: [] },
      [UPLINK]: {
        merge: {
          siteId: SITE,
          metricsIntervalMs: 1000,
          batchDelayMs: { ...UPLINK_DEFAULTS.batchDelayMs, events: 200 },
          exporters: {
            iotcore: UPLINK_DEFAULTS.exporters.iotcore,
            s3: { enabled: true, bucket: BUCKET, prefix: 'edge/', endpoint: proxy.url, region: 'us-east-1', forcePathStyle: true, concurrency: 4, requestTimeoutMs: 5000 },
          },
          backoffInitialMs: 100,
          backoffMaxMs: 400,
          statusIntervalMs: 1000,
        },
        reset: [],
      },
    },
  });
  expect(deployed.status).toBe('SUCCEEDED');
  expect(h.nucleus.services.state(PROCESSOR)).toBe('RUNNING');
  expect(h.nucleus.services.state(UPLINK)).toBe('RUNNING');
  await Promise.all([awaitReady(PROCESSOR, deployedAt), awaitReady(UPLINK, deployedAt)]);
}, 40_000);

afterAll(async () => {
  await cloud?.endAsync(true);
  await h?.close(); // stops the components (SIGTERM, then SIGKILL after the grace time)
  await proxy?.close();
  await s3?.stop();
  if (bundleDir) fs.rmSync(bundleDir, { recursive: true, force: true });
});

test('outage with kill -9 of Processor and Uplink: every alarm reaches the cloud once, alarms first; active alarms survive the restart', async () => {
  const sim = startAdapter();
  try {
    await publishStatuses();
    await phase(sim, true);
    await phase(sim, false);
    await phase(sim, true);

    // 1. kill -9 the Processor with an over-temperature alarm active on every cycling asset; the adapter keeps polling (hot).
    const activeAtKill = new Map(CYCLING.map((a) => [a, alarmsOf(a).at(-1)!]));
    for (const a of activeAtKill.values()) expect(a.state).toBe('raised');
    const alarmsBeforeKill = alarms.length;
    await kill9AndAwaitRestart(PROCESSOR);
    const restartedAt = Date.now();
    // Hot samples after the restart are processed, and raise nothing: the alarms were restored.
    await waitFor(() => CYCLING.every((a) => processed.filter((p) => p.assetId === a && p.ts > restartedAt && p.tmp === HOT).length >= 5), 10_000, 'hot samples processed after the restart');
    expect(alarms.slice(alarmsBeforeKill)).toEqual([]);
    // Cooling down clears them with their original ids.
    await phase(sim, false);
    for (const a of CYCLING) {
      const cleared = alarmsOf(a).at(-1)!;
      expect(cleared).toMatchObject({ state: 'cleared', alarmId: activeAtKill.get(a)!.alarmId, type: 'over_temperature', point: '103.TmpCab' });
      expect(cleared.details?.['raisedAt']).toBe(activeAtKill.get(a)!.ts);
    }
    await publishStatuses();
    await phase(sim, true);

    // 2. kill -9 the Uplink once its outbox holds everything so far (pub/sub has no redelivery: what it
    //    never received is not its loss), temperatures unchanged while it is down; then more cycles.
    await waitFor(() => outboxState().records === alarms.length + statuses.length, 10_000, 'the outbox to hold every alarm and event so far');
    await kill9AndAwaitRestart(UPLINK);
    await phase(sim, false);
    await phase(sim, true);
    await phase(sim, false);
    await publishStatuses();
  } finally {
    await sim.stop();
  }
  const total = alarms.length + statuses.length;
  await waitFor(() => ((o) => o.records === total && o.unsealed === 0)(outboxState()), 10_000, 'everything persisted and sealed in the outbox');
  expect(cloudGot).toEqual([]);
  expect(proxy.putLog.filter((p) => p.status === 200)).toEqual([]);

  // Alarm semantics over the whole run, Processor restart included: per cycling asset, strictly
  // raised/cleared pairs with one id each (4 hot phases), never a second raise; INV-04 never alarmed.
  for (const a of CYCLING) {
    const seq = alarmsOf(a);
    expect(seq.map((x) => x.state)).toEqual(['raised', 'cleared', 'raised', 'cleared', 'raised', 'cleared', 'raised', 'cleared']);
    for (let i = 0; i < seq.length; i += 2) {
      expect(seq[i + 1]!.alarmId).toBe(seq[i]!.alarmId);
      expect(seq[i]!.value).toBe(HOT);
      expect(seq[i + 1]!.value).toBe(COOL);
    }
    expect(new Set(seq.map((x) => x.alarmId)).size).toBe(4);
  }
  expect(alarmsOf('INV-04')).toEqual([]);

  // 3. The cloud returns.
  proxy.fail500(0);
  h.nucleus.iotCore.setReachable(true);
  const expected = new Map<string, unknown>([...alarms, ...statuses].map((r) => [recordKey(r), r]));
  expect(expected.size).toBe(total);
  const atCloud = (): Map<string, unknown> => {
    const out = new Map<string, unknown>();
    for (const m of cloudGot) for (const it of m.items) out.set(recordKey(it), it);
    return out;
  };
  await waitFor(() => outboxState().deliveries === 0 && atCloud().size >= expected.size, 25_000, 'the backlog to drain to IoT Core and S3');
  expect(outboxState()).toEqual({ records: 0, unsealed: 0, deliveries: 0, dropped: 0 });
  expect(invalid).toEqual([]);

  // IoT Core: a batch delivered twice repeats its seq and items (the cloud's de-duplication key);
  // after that, every record exactly once and exactly as the Processor (or the adapter) published it.
  const bySeq = new Map<string, unknown[]>();
  for (const m of cloudGot) {
    expect(m.topic).toBe(m.kind === 'alarms' ? iotTopics.alarms(SITE) : iotTopics.events(SITE));
    const prev = bySeq.get(`${m.kind}:${m.seq}`);
    if (prev) expect(m.items).toEqual(prev);
    else bySeq.set(`${m.kind}:${m.seq}`, m.items);
  }
  const iotKeys = [...bySeq.values()].flat().map(recordKey);
  expect(iotKeys.length).toBe(new Set(iotKeys).size);
  expect([...iotKeys].sort()).toEqual([...expected.keys()].sort());
  expect(atCloud()).toEqual(expected);
  // Priority order of first arrivals: every alarm batch before any event batch.
  const firstArrivals = cloudGot.filter((m, i) => cloudGot.findIndex((x) => x.kind === m.kind && x.seq === m.seq) === i).map((m) => m.kind);
  expect(firstArrivals).toContain('events');
  expect(firstArrivals).toEqual([...firstArrivals].sort((x, y) => classIndex(x as RecordClass) - classIndex(y as RecordClass)));

  // S3: every record exactly once, counted by id over every object; first PUTs in priority order.
  const objects = new Map([...(await s3.objects(`edge/${h.nucleus.thingName}/`))].filter(([k]) => !k.includes('/probe/'))); // data objects, not the S3 probe's
  const inS3 = new Map<string, number>();
  for (const lines of objects.values()) for (const l of lines) inS3.set(recordKey(JSON.parse(l)), (inS3.get(recordKey(JSON.parse(l))) ?? 0) + 1);
  expect([...inS3.keys()].sort()).toEqual([...expected.keys()].sort());
  expect([...inS3.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  const firstPuts: string[] = [];
  for (const p of proxy.putLog.filter((x) => x.status === 200 && !x.path.includes('/probe/'))) if (!firstPuts.includes(p.path)) firstPuts.push(p.path);
  const putClasses = firstPuts.map((k) => classIndex(k.split('/')[4] as RecordClass));
  expect(new Set(putClasses)).toEqual(new Set([classIndex('alarms'), classIndex('events')]));
  expect(putClasses).toEqual([...putClasses].sort((x, y) => x - y));

  process.stdout.write(
    `pipeline outage: ${alarms.length} alarms + ${statuses.length} events; ${bySeq.size} IoT batches (${cloudGot.length - bySeq.size} repeated), ${objects.size} S3 objects, ${proxy.putLog.length} PUTs; ` +
      `restarts: ${states.filter((s) => s.state === 'ERRORED').map((s) => s.name.split('.').pop()).join(', ')}\n`,
  );
});

/** A transition's identity, as the cloud de-duplicates it. */
const transitionKey = (p: unknown): string => {
  const a = p as AlarmMessage;
  return `${a.alarmId}#${String(a.transitionSeq)}`;
};

test('alarms never lost between publish and outbox: Uplink killed with transitions in its socket, IPC deliveries withheld; every transition reaches IoT Core and S3 once', async () => {
  const cloudMark = cloudGot.length;
  const s3Before = new Set((await s3.objects(`edge/${h.nucleus.thingName}/`)).keys());
  const alarmMark = alarms.length;
  const sim = startAdapter();
  try {
    // 1. The Uplink stops reading (SIGSTOP): transitions published now are handed to its connection
    //    and never read. Then kill -9: they existed only in its socket buffer.
    const [pid] = componentPids(UPLINK);
    process.kill(pid!, 'SIGSTOP');
    await phase(sim, true);
    for (const a of CYCLING) sim.temps.set(a, HOT + 7); // moves the value past updateDelta (5): an update of each raised alarm
    await waitFor(() => CYCLING.every((a) => alarmsOf(a).at(-1)?.transition === 'updated'), 10_000, 'an update of every raised alarm');
    const lostInSocket = alarms.length - alarmMark;
    expect(lostInSocket).toBe(2 * CYCLING.length);
    await kill9AndAwaitRestart(UPLINK);

    // 2. IPC delivers nothing to the Uplink for a while: transitions and snapshots are dropped on the way.
    h.nucleus.withholdDeliveries(UPLINK, true);
    await phase(sim, false);
    await phase(sim, true);
    h.nucleus.withholdDeliveries(UPLINK, false);
    await phase(sim, false);
  } finally {
    await sim.stop();
  }
  const mine = alarms.slice(alarmMark);
  expect(mine.map((a) => a.transition)).toEqual(expect.arrayContaining(['raised', 'updated', 'cleared']));
  const expected = new Set(mine.map(transitionKey));
  expect(expected.size).toBe(mine.length);

  // IoT Core: batches de-duplicated on (outboxId, seq); then each transition exactly once.
  const iotBatches = new Map<string, unknown[]>();
  const iotItems = (): unknown[] => {
    iotBatches.clear();
    for (const m of cloudGot.slice(cloudMark)) if (m.kind === 'alarms') iotBatches.set(String(m.seq), m.items);
    return [...iotBatches.values()].flat();
  };
  await waitFor(() => new Set(iotItems().map(transitionKey)).size >= expected.size, 20_000, 'every transition at IoT Core');
  const atIot = iotItems().map(transitionKey);
  expect(atIot.filter((k) => expected.has(k)).sort()).toEqual([...expected].sort());
  expect(atIot.length).toBe(new Set(atIot).size);

  // S3: each transition in exactly one object line.
  const inS3 = async (): Promise<string[]> => {
    const objects = await s3.objects(`edge/${h.nucleus.thingName}/`);
    return [...objects].filter(([k]) => !s3Before.has(k) && k.includes('/alarms/')).flatMap(([, lines]) => lines.map((l) => transitionKey(JSON.parse(l))));
  };
  await waitFor(async () => new Set(await inS3()).size >= expected.size, 20_000, 'every transition in S3');
  const s3Keys = await inS3();
  expect(s3Keys.filter((k) => expected.has(k)).sort()).toEqual([...expected].sort());
  expect(s3Keys.length).toBe(new Set(s3Keys).size);
  expect(invalid).toEqual([]);
  process.stdout.write(`alarm delivery: ${mine.length} transitions (${2 * CYCLING.length} lost in the killed Uplink's socket, others withheld by IPC), all at IoT Core and in S3 once\n`);
});
