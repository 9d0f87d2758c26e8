/**
 * Exporter contract suite (components/uplink/exporters/types.ts): the same behavioural cases run
 * against every exporter, each against its real peer.
 *
 *  - IoT Core: the exporter on a real bus (our IpcBus over the SDK's IPC client) connected to the
 *    local runtime; the test is the cloud, an MQTT client on the runtime's broker.
 *    Unreachable = `nucleus.iotCore.setReachable(false)`.
 *  - S3: s3rver (a process) behind the fault-injecting front, credentials from the runtime's TES
 *    (its URL and the Uplink's token, as the nucleus gives them). Unreachable = the front answers
 *    500 to everything.
 *
 * Cases: `send` resolves only once the destination has the batch; it rejects (transient) while the
 * destination is unreachable and delivers nothing then; a retry of the same batch is idempotent at
 * the destination (S3: one object, overwritten; IoT Core: the same `seq` and items, the cloud's
 * de-duplication key); size: IoT Core messages stay within 128 KB (a batch too large is a
 * PermanentExportError), S3 takes a large batch whole.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { connectAsync, type MqttClient } from 'mqtt';
import { createBus } from '../../components/lib/bus';
import type { Bus } from '../../components/lib/bus-types';
import { systemClock } from '../../components/lib/clock';
import { accessControlFor, CONTRACT_VERSION, validateUplinkBatch, type UplinkStatus } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { UPLINK_DEFAULTS } from '../../components/uplink/config';
import { createIotCoreExporter, IOT_CORE_MAX_MESSAGE_BYTES } from '../../components/uplink/exporters/iotcore';
import { createS3Exporter } from '../../components/uplink/exporters/s3';
import { ExportError, PermanentExportError, type ExportBatch, type Exporter } from '../../components/uplink/exporters/types';
import { clientConfig } from '../../scripts/runtime/client';
import { startNucleus, type Harness } from '../helpers/nucleus';
import { startFaultProxy, startS3rver, type FaultProxy, type S3rver } from '../helpers/s3rver';
import { waitFor } from '../helpers/wait';

jest.setTimeout(40_000);

const SITE = 'sink-site';
const UPLINK = 'com.dcmms.edge.Uplink';
const BUCKET = 'uplink-sinks';

/** What a sink looks like to the contract: the exporter, its outage switch, and what the destination holds. */
interface SinkRig {
  exporter: Exporter;
  setReachable(up: boolean): void;
  /** Every delivery the destination has, as (seq, item lines); S3: one entry per stored object. */
  delivered(): Promise<Array<{ seq: number; lines: string[] }>>;
  /** Largest batch body this sink accepts whole (bytes of gzip). */
  maxBody: number;
}

let h: Harness;
let bus: Bus;
let cloud: MqttClient;
let s3: S3rver;
let proxy: FaultProxy;
let token: string;
const mqttGot: Array<{ seq: number; lines: string[] }> = [];
const saved = { ...process.env };

const status = (): UplinkStatus => ({ schemaVersion: CONTRACT_VERSION, siteId: SITE, ts: Date.now(), exporters: {}, outboxBytes: 0, maxOutboxBytes: 1, backlog: {}, dropped: {}, compressionRatio: null });

beforeAll(async () => {
  s3 = await startS3rver(BUCKET);
  proxy = await startFaultProxy(s3.url);
  h = await startNucleus({ tes: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', lifetimeMs: 3600_000 } });
  const d = await h.deploy([{ name: UPLINK, defaults: { ...UPLINK_DEFAULTS, siteId: SITE }, accessControl: accessControlFor(UPLINK) as Record<string, unknown> }]);
  expect(d.status).toBe('SUCCEEDED');
  token = h.nucleus.tokenFor(UPLINK);
  bus = createBus({ createClient: () => greengrasscoreipc.createClient(clientConfig(h.nucleus.socketPath, token)), logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock });
  await bus.connect();
  cloud = await connectAsync(h.nucleus.iotCore.brokerUrl, { clientId: 'sink-cloud', reconnectPeriod: 0 });
  cloud.on('message', (topic, payload) => {
    if (topic.endsWith('/uplink/status')) return;
    const v = validateUplinkBatch(JSON.parse(gunzipSync(payload).toString('utf8')));
    if (!v.ok) throw new Error(`invalid batch on ${topic}: ${v.reason}`);
    mqttGot.push({ seq: v.value.seq, lines: v.value.items.map((i) => JSON.stringify(i)) });
  });
  await cloud.subscribeAsync(`dcmms/${SITE}/#`, { qos: 1 });
  for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
}, 30_000);

afterAll(async () => {
  process.env = saved;
  await cloud?.endAsync(true);
  await bus?.close();
  await h?.close();
  await proxy?.close();
  await s3?.stop();
});

/**
 * The IoT Core exporter's clock: real time plus an offset. The exporter trusts a QoS 0 probe for
 * `probeIntervalMs` (exporters/iotcore.ts); the contract cases take an outage as older than that
 * window by moving this clock past it (the window itself has its own test below).
 */
let iotOffsetMs = 0;
const iotClock = { ...systemClock, now: () => Date.now() + iotOffsetMs };
const PROBE_MS = 1000;

const SINKS: Record<string, () => SinkRig> = {
  iotcore: () => ({
    exporter: createIotCoreExporter({ bus, clock: iotClock, siteId: SITE, outboxId: 'test-outbox', probeIntervalMs: PROBE_MS, status }),
    setReachable: (up) => {
      h.nucleus.iotCore.setReachable(up);
      if (!up) iotOffsetMs += PROBE_MS + 1;
    },
    delivered: () => Promise.resolve([...mqttGot]),
    maxBody: UPLINK_DEFAULTS.maxBatchBytes,
  }),
  s3: () => ({
    exporter: createS3Exporter({ siteId: SITE, thingName: h.nucleus.thingName, bucket: BUCKET, prefix: 'edge/', endpoint: proxy.url, region: 'us-east-1', forcePathStyle: true, requestTimeoutMs: 3000, outboxId: 'ob-sinks', tes: { fullUri: h.nucleus.tes!.url, authorizationToken: token } }),
    setReachable: (up) => proxy.fail500(up ? 0 : Number.POSITIVE_INFINITY),
    delivered: async () => [...(await s3.objects(`edge/${h.nucleus.thingName}/`)).entries()].map(([key, lines]) => ({ seq: Number(/-(\d+)\.ndjson\.gz$/.exec(key)![1]), lines })),
    maxBody: 4 * 1024 * 1024,
  }),
};

let nextSeq = 1;
const batch = (lines: string[], cls: ExportBatch['cls'] = 'alarms'): ExportBatch => ({ seq: nextSeq++, cls, oldestAt: Date.UTC(2026, 10, 26), createdAt: Date.UTC(2026, 10, 26), count: lines.length, body: gzipSync(lines.join('\n') + '\n') });
const item = (n: number, pad = 0): string => JSON.stringify({ schemaVersion: 1, siteId: SITE, assetId: 'INV-0001', alarmId: `a-${n}`, pad: 'x'.repeat(pad) });

describe.each(Object.keys(SINKS))('exporter contract: %s', (name) => {
  let rig: SinkRig;
  beforeAll(() => (rig = SINKS[name]!()));
  afterAll(() => rig.exporter.close());
  const has = async (seq: number): Promise<Array<{ seq: number; lines: string[] }>> => (await rig.delivered()).filter((d) => d.seq === seq);

  test('send resolves only once the destination holds the batch, with every item', async () => {
    const b = batch([item(1), item(2), item(3)]);
    await rig.exporter.send(b);
    // IoT Core: PUBACK came from the nucleus; the broker forwards to the cloud subscriber asynchronously.
    await waitFor(async () => (await has(b.seq)).length === 1, 5000, 'the batch at the destination');
    expect((await has(b.seq))[0]!.lines.map((l) => (JSON.parse(l) as { alarmId: string }).alarmId)).toEqual(['a-1', 'a-2', 'a-3']);
  });

  test('unreachable: send rejects with a transient error and nothing is delivered; it goes once reachable', async () => {
    const b = batch([item(10)]);
    rig.setReachable(false);
    try {
      const err: unknown = await rig.exporter.send(b).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ExportError);
      expect(err).not.toBeInstanceOf(PermanentExportError);
    } finally {
      rig.setReachable(true);
    }
    expect(await has(b.seq)).toHaveLength(0);
    // The sender retries with the same batch: it is delivered once the destination is back.
    await rig.exporter.send(b);
    await waitFor(async () => (await has(b.seq)).length === 1, 5000, 'the retried batch');
  });

  test('a retry of a delivered batch is idempotent at the destination (same identity, same items)', async () => {
    const b = batch([item(20), item(21)]);
    await rig.exporter.send(b);
    await rig.exporter.send(b); // a crash between delivery and confirm makes the sender send it again
    await waitFor(async () => (await has(b.seq)).length >= 1, 5000, 'the batch');
    const got = await has(b.seq);
    // S3: one object (the key depends only on the batch). IoT Core: at-least-once, each copy with the same seq and items.
    if (name === 's3') expect(got).toHaveLength(1);
    else await waitFor(async () => (await has(b.seq)).length === 2, 5000, 'the repeated publish');
    for (const g of await has(b.seq)) expect(g.lines).toEqual([item(20), item(21)]);
  });

  test('size: the largest sealed batch goes whole; IoT Core messages stay within 128 KB', async () => {
    // Incompressible items: gzip cannot shrink them, the worst case for the message size.
    const lines: string[] = [];
    let body = gzipSync('');
    while (body.length < UPLINK_DEFAULTS.maxBatchBytes - 2000) {
      lines.push(JSON.stringify({ alarmId: `big-${lines.length}`, blob: randomBytes(600).toString('base64') }));
      body = gzipSync(lines.join('\n') + '\n');
    }
    const b = { ...batch(lines), body };
    await rig.exporter.send(b);
    await waitFor(async () => (await has(b.seq)).length === 1, 5000, 'the large batch');
    expect((await has(b.seq))[0]!.lines).toHaveLength(lines.length);
    if (name !== 'iotcore') return;
    // Too large for one IoT Core message: refused for good (the sender then skips this sink only), nothing published.
    const huge: string[] = [];
    while (huge.length * 800 < IOT_CORE_MAX_MESSAGE_BYTES * 2) huge.push(JSON.stringify({ alarmId: `huge-${huge.length}`, blob: randomBytes(600).toString('base64') }));
    const tooBig = batch(huge);
    await expect(rig.exporter.send(tooBig)).rejects.toBeInstanceOf(PermanentExportError);
    expect(await has(tooBig.seq)).toHaveLength(0);
  });
});

test('IoT Core: an outage younger than the probe window is not seen; the nucleus spool still delivers the batch', async () => {
  const ex = createIotCoreExporter({ bus, clock: iotClock, siteId: SITE, outboxId: 'test-outbox', probeIntervalMs: PROBE_MS, status });
  await ex.send(batch([item(30)])); // a fresh good probe
  h.nucleus.iotCore.setReachable(false);
  const b = batch([item(31)]);
  try {
    await ex.send(b); // within the window: accepted into the nucleus's spool and counted as sent
    expect(h.nucleus.iotCore.stats().spoolDepth).toBeGreaterThan(0);
    expect(mqttGot.filter((m) => m.seq === b.seq)).toHaveLength(0);
  } finally {
    h.nucleus.iotCore.setReachable(true);
  }
  await waitFor(() => mqttGot.some((m) => m.seq === b.seq), 5000, 'the spooled batch after the outage');
});

test('IoT Core: every message the cloud received was at most 128 KB', async () => {
  // Measured on the wire: re-publish the largest batch and look at the MQTT payload size.
  const sizes: number[] = [];
  const onMsg = (_t: string, p: Buffer): void => void sizes.push(p.length);
  cloud.on('message', onMsg);
  const ex = createIotCoreExporter({ bus, clock: systemClock, siteId: SITE, outboxId: 'test-outbox', probeIntervalMs: 1000, status });
  const lines: string[] = [];
  let body = gzipSync('');
  while (body.length < UPLINK_DEFAULTS.maxBatchBytes - 500) {
    lines.push(JSON.stringify({ alarmId: `w-${lines.length}`, blob: randomBytes(300).toString('base64') }));
    body = gzipSync(lines.join('\n') + '\n');
  }
  await ex.send({ ...batch(lines), body });
  await waitFor(() => sizes.some((s) => s > 100_000), 5000, 'the large message');
  cloud.off('message', onMsg);
  expect(Math.max(...sizes)).toBeLessThanOrEqual(IOT_CORE_MAX_MESSAGE_BYTES);
});
