/**
 * The Uplink's outage test through Greengrass Stream Manager (docs/uplink.md "Stream Manager",
 * "Tests"), every part a real process: the local runtime (IPC, Token Exchange Service and the built-in
 * aws.greengrass.StreamManager, exporting to s3rver behind a fault front and to the SiteWise recorder)
 * in a child process; the Uplink as shipped (the esbuild bundle of components/uplink/main.ts, AWS's
 * Stream Manager client, Stream Manager's port read over IPC GetConfiguration); s3rver.
 *
 *  1. The cloud goes away (every S3 connection reset).
 *  2. A simulated hour of every class (ASSETS inverters: 1-minute, 15-minute rollups, alarms, device
 *     events, health) is published on the contract's topics. Half-way the Uplink is SIGKILLed once what
 *     was published is in its outbox, and restarted.
 *  3. With everything persisted, and S3 tasks queued in Stream Manager, the nucleus is SIGKILLed (Stream
 *     Manager dies with it; the Uplink too, as a component of it), and both are started again on the
 *     same root: Stream Manager recovers its streams from disk.
 *  4. The cloud returns.
 * Then: every record is in S3 exactly once by content (counted by id over every object), under keys
 * the direct exporter would use; no task file is left; alarms went before the backlog (but for the
 * tasks already queued in Stream Manager when the outage was noticed); the rollups are recorded as
 * SiteWise entries; nothing was dropped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { accessControlFor, topics } from '../../components/lib/contract';
import { UPLINK_DEFAULTS } from '../../components/uplink/config';
import { sitewiseAlias } from '../../components/uplink/exporters/stream-manager';
import { outboxState } from '../../components/uplink/testing/outbox-state';
import { s3TasksPerKey } from '../../components/uplink/testing/sm-tasks';
import { recordId, siteDay, type SiteRecord } from '../../components/uplink/testing/site-day';
import { connectIpc, type IpcClient } from '../../scripts/runtime/client';
import { pubsubPolicy, recipeYaml } from '../helpers/nucleus';
import { startFaultProxy, startS3rver, type FaultProxy, type S3rver } from '../helpers/s3rver';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const ROOT = path.resolve(__dirname, '../..');
const SITE = 'sm-outage';
const UPLINK = 'com.dcmms.edge.Uplink';
const PUBLISHER = 'com.test.SitePublisher';
const SM = 'aws.greengrass.StreamManager';
const BUCKET = 'uplink-sm-outage';
const ASSETS = 4;
const DAY = 86_400_000;
const DAY_START = Math.floor(Date.now() / DAY) * DAY - DAY;
/** The simulated hour: 05:30 to 06:30 of yesterday (it holds alarm transitions of the generated day). */
const FROM = DAY_START + 5.5 * 3600_000;
const TO = FROM + 3600_000;

let dir: string;
let gg: string;
let s3: S3rver;
let proxy: FaultProxy;
let sitewiseFile: string;
let childJs: string;
let bundle: string;
let workDir: string;
let nucleus: { child: ChildProcess; info: NucleusInfo } | undefined;
let uplink: ChildProcess | undefined;
/** What the running Uplink process has logged (JSON lines). */
let uplinkOut = '';
const children: ChildProcess[] = [];

interface NucleusInfo {
  socketPath: string;
  uplinkToken: string;
  publisherToken: string;
  thingName: string;
  smPort: number;
}

function uplinkConfig(): Record<string, unknown> {
  return {
    ...UPLINK_DEFAULTS,
    siteId: SITE,
    metricsIntervalMs: 1000,
    batchDelayMs: { alarms: 0, events: 200, '1m': 300, '15m': 300, '1d': 0, health: 300 },
    maxBatchRecords: 25,
    routes: {
      alarms: ['streammanager-s3'],
      events: ['streammanager-s3'],
      '1m': ['streammanager-s3', 'streammanager-sitewise'],
      '15m': ['streammanager-s3', 'streammanager-sitewise'],
      '1d': ['streammanager-s3'],
      health: ['streammanager-s3'],
    },
    exporters: {
      ...UPLINK_DEFAULTS.exporters,
      iotcore: { ...UPLINK_DEFAULTS.exporters.iotcore, enabled: false },
      streamManager: {
        ...UPLINK_DEFAULTS.exporters.streamManager,
        enabled: true,
        requestTimeoutMs: 5000,
        taskTimeoutMs: 3000,
        probeIntervalMs: 300,
        s3: { enabled: true, bucket: BUCKET, prefix: 'edge/' },
        sitewise: { enabled: true },
      },
    },
    backoffInitialMs: 100,
    backoffMaxMs: 1000,
    statusIntervalMs: 500,
  };
}

/** The runtime in a child process: first start deploys Stream Manager, the Uplink's configuration and the publisher; a restart recovers them. */
function buildChild(): void {
  buildSync({
    stdin: {
      contents: `
        const fs = require('node:fs');
        const path = require('node:path');
        const { createNucleus } = require(${JSON.stringify(path.join(ROOT, 'scripts/runtime/nucleus'))});
        const { silentLogger } = require(${JSON.stringify(path.join(ROOT, 'components/lib/logger'))});
        (async () => {
          const [root, recipes, s3, sitewiseFile] = process.argv.slice(2);
          const first = !fs.existsSync(path.join(root, 'deployed'));
          const n = createNucleus({
            rootDir: root,
            logger: silentLogger,
            deployment: { stableMs: 200 },
            tes: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', lifetimeMs: 3600000 },
            streamManager: { endpoints: { s3, sitewiseFile }, retryInitialMs: 100, retryMaxMs: 1000 },
          });
          await n.start();
          if (first) {
            const id = n.deployments.submit({
              recipeDirectoryPath: recipes,
              rootComponentsToAdd: { '${UPLINK}': '1.0.0', '${PUBLISHER}': '1.0.0' },
              rootComponentsToRemove: [],
              configuration: { '${SM}': { merge: { STREAM_MANAGER_SERVER_PORT: '0' }, reset: [] } },
              failureHandlingPolicy: 'DO_NOTHING',
            });
            for (;;) {
              await n.deployments.whenIdle();
              const s = n.deployments.status(id);
              if (s.status === 'FAILED') throw new Error('deployment failed: ' + JSON.stringify(s));
              if (s.status === 'SUCCEEDED') break;
            }
            fs.writeFileSync(path.join(root, 'deployed'), 'yes');
          }
          await n.services.waitFor(['${SM}'], ['RUNNING'], 20000);
          await n.streamManager.settled();
          process.stdout.write(JSON.stringify({ socketPath: n.socketPath, uplinkToken: n.tokenFor('${UPLINK}'), publisherToken: n.tokenFor('${PUBLISHER}'), thingName: n.thingName, smPort: n.streamManager.running.port }) + '\\n');
        })().catch((e) => { console.error(e); process.exit(1); });
      `,
      resolveDir: __dirname,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    target: 'node20',
    outfile: childJs,
    packages: 'external',
    logLevel: 'error',
  });
}

async function startNucleusChild(): Promise<{ child: ChildProcess; info: NucleusInfo }> {
  const child = spawn(process.execPath, [childJs, gg, path.join(dir, 'recipes'), proxy.url, sitewiseFile], { env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const info = await new Promise<NucleusInfo>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]!) as NucleusInfo);
    });
    child.once('exit', (code) => reject(new Error(`nucleus child exited ${code}: ${err.slice(-2000)}`)));
  });
  return { child, info };
}

/** The shipped bundle with the environment the nucleus gives a component (no STREAM_MANAGER_SERVER_PORT: the port comes over IPC). */
async function startUplink(info: NucleusInfo): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('STREAM_MANAGER')));
  Object.assign(env, {
    NODE_PATH: path.join(ROOT, 'node_modules'),
    AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT: info.socketPath,
    SVCUID: info.uplinkToken,
    AWS_CONTAINER_AUTHORIZATION_TOKEN: info.uplinkToken,
    AWS_IOT_THING_NAME: info.thingName,
    AWS_REGION: 'us-east-1',
  });
  const child = spawn(process.execPath, [bundle], { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  uplinkOut = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      uplinkOut += d.toString();
      if (/"msg":"running"/.test(out)) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`uplink exited ${code} ${signal} before running: ${out.slice(-2000)} ${err}`)));
  });
  return child;
}

async function kill9(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

async function publishAll(info: NucleusInfo, records: readonly SiteRecord[]): Promise<void> {
  const ipc: IpcClient = await connectIpc(info.socketPath, info.publisherToken);
  const topicOf = (r: SiteRecord): string => {
    const p = r.payload as { assetId?: string; interval?: '1m' | '15m' | '1d' };
    if (r.cls === 'alarms') return topics.alarms(SITE, p.assetId!);
    if (r.cls === 'events') return topics.deviceStatus(SITE, p.assetId!);
    if (r.cls === 'health') return topics.healthSummary(SITE);
    return topics.aggregates(SITE, p.interval!, p.assetId!);
  };
  try {
    for (let i = 0; i < records.length; i += 100) {
      await Promise.all(records.slice(i, i + 100).map((r) => ipc.publishToTopic({ topic: topicOf(r), publishMessage: { jsonMessage: { message: r.payload } } })));
    }
  } finally {
    await ipc.close();
  }
}

const outbox = () => outboxState(path.join(workDir, 'outbox.db'));
const taskDir = () => path.join(workDir, 'streammanager-s3');
const taskFiles = (): string[] => (fs.existsSync(taskDir()) ? fs.readdirSync(taskDir()) : []);

beforeAll(async () => {
  dir = fs.mkdtempSync('/tmp/uplink-smo-');
  gg = fs.mkdtempSync('/tmp/gg-');
  workDir = path.join(dir, 'work');
  fs.mkdirSync(workDir);
  sitewiseFile = path.join(dir, 'sitewise.ndjson');
  childJs = path.join(dir, 'nucleus-child.js');
  bundle = path.join(dir, 'main.js');
  buildSync({ entryPoints: [path.join(ROOT, 'components/uplink/main.ts')], bundle: true, platform: 'node', target: 'node20', packages: 'external', outfile: bundle, logLevel: 'error' });
  buildChild();
  const recipes = path.join(dir, 'recipes');
  fs.mkdirSync(recipes);
  // The Uplink's process is the test's; the nucleus holds its configuration, policies and its dependency on Stream Manager.
  fs.writeFileSync(
    path.join(recipes, `${UPLINK}-1.0.0.yaml`),
    recipeYaml({ name: UPLINK, defaults: uplinkConfig(), accessControl: accessControlFor(UPLINK) as Record<string, unknown>, dependencies: { [SM]: { VersionRequirement: '>=2.0.0 <3.0.0', DependencyType: 'SOFT' } } }),
  );
  fs.writeFileSync(path.join(recipes, `${PUBLISHER}-1.0.0.yaml`), recipeYaml({ name: PUBLISHER, accessControl: pubsubPolicy(PUBLISHER, ['PublishToTopic'], [`site/${SITE}/*`]) }));
  s3 = await startS3rver(BUCKET);
  proxy = await startFaultProxy(s3.url);
}, 60_000);

afterAll(async () => {
  for (const c of children) await kill9(c);
  await proxy?.close();
  await s3?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(gg, { recursive: true, force: true });
});

test('an hour of cloud outage with kill -9 of the Uplink and of the nucleus hosting Stream Manager: every record once by content, alarms first', async () => {
  const hour = [...siteDay({ site: SITE, dayStart: DAY_START, assets: ASSETS })].filter((r) => r.at > FROM && r.at <= TO);
  const half = hour.filter((r) => r.at <= FROM + 1800_000);
  const rest = hour.slice(half.length);
  expect(hour.filter((r) => r.cls === 'alarms').length).toBeGreaterThan(0);

  nucleus = await startNucleusChild();
  uplink = await startUplink(nucleus.info);

  // 1. The cloud goes away.
  proxy.setDown(true);
  // 2. The first half, kill -9 of the Uplink once it is persisted, restart, the second half.
  await publishAll(nucleus.info, half);
  await waitFor(() => outbox().records === half.length, 20_000, 'first half persisted');
  await kill9(uplink);
  uplink = await startUplink(nucleus.info);
  await publishAll(nucleus.info, rest);
  await waitFor(() => ((o) => o.records === hour.length && o.unsealed === 0)(outbox()), 20_000, 'the whole hour persisted and sealed');
  // S3 tasks are queued in Stream Manager, their files waiting; nothing reached S3.
  await waitFor(() => taskFiles().length > 0, 20_000, 'S3 tasks queued in Stream Manager');
  expect(proxy.putLog.filter((p) => p.status === 200)).toHaveLength(0);

  // 3. kill -9 of the nucleus (Stream Manager with it) and of the Uplink; both start again on the same root.
  const queuedAtKill = taskFiles().length;
  await kill9(nucleus.child);
  await kill9(uplink);
  nucleus = await startNucleusChild();
  uplink = await startUplink(nucleus.info);
  // The restarted Uplink sends its backlog while the cloud is still away, and gives up waiting
  // (taskTimeoutMs): the batches whose tasks are queued must not be appended again.
  await waitFor(() => /"exporter":"streammanager-s3"[^\n]*"msg":"exporter offline/.test(uplinkOut), 20_000, 'the restarted Uplink to try and time out');

  // 4. The cloud returns.
  const back = Date.now();
  proxy.setDown(false);
  await waitFor(() => outbox().deliveries === 0, 60_000, 'the backlog to drain');
  await waitFor(() => taskFiles().length === 0, 10_000, 'every task file removed');
  const drainMs = Date.now() - back;
  expect(outbox()).toEqual({ records: 0, unsealed: 0, deliveries: 0, dropped: 0 });

  // Every record in S3 exactly once, by content.
  const objects = await s3.objects(`edge/${nucleus.info.thingName}/`);
  const seen = new Map<string, number>();
  for (const lines of objects.values()) for (const l of lines) seen.set(recordId(JSON.parse(l)), (seen.get(recordId(JSON.parse(l))) ?? 0) + 1);
  expect(hour.filter((r) => seen.get(r.id) !== 1).map((r) => r.id)).toEqual([]);
  expect(seen.size).toBe(hour.length);
  // Keys of the direct exporter's layout: <prefix><thing>/<class>/<yyyy>/<mm>/<dd>/<outboxId>-<seq 12>.ndjson.gz
  for (const k of objects.keys()) expect(k).toMatch(new RegExp(`^edge/${nucleus.info.thingName}/(alarms|events|1m|15m|1d|health)/\\d{4}/\\d{2}/\\d{2}/[0-9a-f-]{36}-\\d{12}\\.ndjson\\.gz$`));
  const okPuts = proxy.putLog.filter((p) => p.status === 200);
  const uploadsPerKey = okPuts.length / objects.size;
  // No key uploaded twice, and no task appended twice: the tasks queued before the kills were read back
  // from Stream Manager's task streams by the restarted Uplink, not appended again.
  expect(okPuts.length).toBe(objects.size);
  const tasksPerKey = await s3TasksPerKey(nucleus.info.smPort, nucleus.info.uplinkToken);
  expect([...tasksPerKey].filter(([, n]) => n !== 1)).toEqual([]);
  expect(tasksPerKey.size).toBe(objects.size);

  // Alarms first: before the first alarm object only tasks already queued in Stream Manager when the
  // outage was noticed (their files were there at the nucleus kill).
  const firstPuts: string[] = [];
  for (const p of okPuts) if (!firstPuts.includes(p.path)) firstPuts.push(p.path);
  const firstAlarm = firstPuts.findIndex((p) => p.includes('/alarms/'));
  expect(firstAlarm).toBeGreaterThanOrEqual(0);
  expect(firstAlarm).toBeLessThanOrEqual(queuedAtKill);
  expect(firstPuts.length).toBeGreaterThan(firstAlarm + 5);

  // The rollups recorded as SiteWise entries, every (alias, time) of the hour.
  const expected = new Set<string>();
  for (const r of hour.filter((x) => x.cls === '1m' || x.cls === '15m')) {
    const p = r.payload as { assetId: string; interval: string; start: number; series: Record<string, unknown> };
    for (const point of Object.keys(p.series)) expected.add(`${sitewiseAlias(SITE, p.assetId, point, p.interval)}@${p.start / 1000}`);
  }
  const recorded = new Set<string>();
  await waitFor(() => {
    if (!fs.existsSync(sitewiseFile)) return false;
    for (const line of fs.readFileSync(sitewiseFile, 'utf8').trim().split('\n')) {
      if (!line) continue;
      const e = (JSON.parse(line) as { entry: { propertyAlias: string; propertyValues: Array<{ timestamp: { timeInSeconds: number } }> } }).entry;
      for (const v of e.propertyValues) recorded.add(`${e.propertyAlias}@${v.timestamp.timeInSeconds}`);
    }
    return [...expected].every((k) => recorded.has(k));
  }, 20_000, 'every rollup value recorded for SiteWise');
  expect([...recorded].filter((k) => !expected.has(k))).toEqual([]);

  process.stdout.write(
    `stream manager outage: ${hour.length} records (${ASSETS} inverters, one hour), ${objects.size} objects, ${okPuts.length} successful PUTs (${uploadsPerKey.toFixed(2)} per key), ${queuedAtKill} tasks queued in Stream Manager at the nucleus kill, first alarm object ${firstAlarm + 1} of ${firstPuts.length}, drained ${drainMs} ms after the cloud's return, ${expected.size} SiteWise values\n`,
  );
});
