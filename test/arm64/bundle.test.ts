/**
 * The whole bundle on aarch64: built with `--arch all`, deployed through the local runtime as an
 * aarch64 core device (the nucleus's platform is linux/aarch64, so it picks every recipe's
 * linux-aarch64 manifest), each component run by the arm64 Node.js under QEMU user mode (a `node`
 * on PATH that execs qemu-aarch64 with it), against the site simulator:
 *
 *  - every component RUNNING, each process really the arm64 node;
 *  - every simulated device's telemetry in the Processor's store;
 *  - an alarm raised by the Processor and sent to IoT Core by the Uplink; MLInference's models
 *    validated by onnxruntime; no component restarted;
 *  - the store the arm64 Processor wrote opens clean on x64 (integrity_check) with the same data
 *    as on arm64, and what x64 then writes reads the same on arm64.
 *
 * Needs qemu-user and the cross toolchain (scripts/install-test-peers.sh); the arm64 tree comes
 * from the cache (scripts/arm64/toolchain.js prepare), made on first use.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import mqtt from 'mqtt';
import { IMPLEMENTED_COMPONENTS, IOT_ALL_TOPICS_FILTER, iotTopics, type AlarmMessage, type UplinkBatch } from '../../components/lib/contract';
import { openStoreReader } from '../../components/lib/store';
import { PROCESSOR_DEFAULTS } from '../../components/processor/config';
import { createNucleus, type Nucleus } from '../../scripts/runtime/nucleus';
import type { DeploymentRequest } from '../../scripts/runtime/deployments';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import * as toolchain from '../../scripts/arm64/toolchain';
import { version } from '../../package.json';
import { componentPids } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(600_000);

const exec = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const SITE_COMPONENT = 'com.dcmms.edge.Site';
const PROCESSOR = 'com.dcmms.edge.Processor';
const SITE = 'demo-site';
const DIGEST = path.join(__dirname, 'db-digest.js');

let tmp: string;
let build: string;
let tree: toolchain.Arm64Tree;
let sim: SiteSimulator;
let nucleus: Nucleus;
let cloud: mqtt.MqttClient;
const savedPath = process.env['PATH'];
const cloudAlarms: AlarmMessage[] = [];
let deployedAt = 0;
/** Component name -> its process id when first seen RUNNING. */
const firstPids = new Map<string, number>();

async function deploy(request: Partial<DeploymentRequest>): Promise<{ status: string; detail: string }> {
  const id = nucleus.deployments.submit({ rootComponentsToAdd: {}, rootComponentsToRemove: [], configuration: {}, failureHandlingPolicy: 'DO_NOTHING', ...request });
  for (;;) {
    await nucleus.deployments.whenIdle();
    const s = nucleus.deployments.status(id)!;
    if (s.status === 'SUCCEEDED' || s.status === 'FAILED') return { status: s.status, detail: JSON.stringify(s.deploymentStatusDetails ?? {}) };
  }
}

/** The digest of a SQLite file as the x64 node (this one) or the arm64 node in QEMU reads it. */
async function digest(arch: 'x64' | 'arm64', file: string, write = false): Promise<{ arch: string; integrity: string; tables: Record<string, { count: number; sha256: string }> }> {
  const args = [DIGEST, arch === 'x64' ? path.join(ROOT, 'node_modules', 'better-sqlite3') : path.join(tree.nodeModules, 'better-sqlite3'), file, ...(write ? ['write'] : [])];
  const q = toolchain.qemuCommand([tree.node, ...args]);
  const { stdout } = arch === 'x64' ? await exec(process.execPath, args) : await exec(q.file, q.args, { env: toolchain.qemuEnv(), timeout: 120_000 });
  return JSON.parse(stdout) as { arch: string; integrity: string; tables: Record<string, { count: number; sha256: string }> };
}

beforeAll(async () => {
  tree = toolchain.ensureArm64Tree();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmms-arm64-bundle-'));
  build = path.join(tmp, 'greengrass-build');
  execFileSync(process.execPath, ['scripts/build.js', '--arch', 'all', '--no-tools', '--out', build], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  // Every recipe's `node ...main.js` now runs the arm64 node under QEMU.
  process.env['PATH'] = `${toolchain.writeNodeWrapper(path.join(tmp, 'bin'), tree.node)}${path.delimiter}${savedPath ?? ''}`;

  // Noon, clear sky: the inverters produce, so the high-power rule below raises at once.
  sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 2, cloudiness: 0, startTime: new Date(Date.UTC(2026, 3, 15, 12, 0, 0)), timeScale: 1 });
  nucleus = createNucleus({
    rootDir: path.join(tmp, 'root'),
    thingName: 'arm64-gateway',
    platform: { os: 'linux', architecture: 'aarch64' },
    // Under QEMU a component takes seconds to start and to answer a configuration validation.
    deployment: { componentUpdateTimeoutMs: 5000, configValidationTimeoutMs: 60_000, deploymentTimeoutMs: 300_000 },
  });
  await nucleus.start();
  cloud = await mqtt.connectAsync(nucleus.iotCore.brokerUrl, { protocolVersion: 4 });
  cloud.on('message', (topic, payload) => {
    if (topic !== iotTopics.alarms(SITE)) return;
    for (const a of (JSON.parse(gunzipSync(payload).toString('utf8')) as UplinkBatch).items) cloudAlarms.push(a as AlarmMessage);
  });
  await cloud.subscribeAsync(IOT_ALL_TOPICS_FILTER, { qos: 1 });

  const devices = sim.deviceConfig({ pollIntervalMs: 1000 });
  const highPower = { id: 'arm64-high-power', kind: 'threshold', type: 'high_power', severity: 'low', points: ['103.W'], op: 'above', limit: 1 };
  deployedAt = Date.now();
  const d = await deploy({
    recipeDirectoryPath: path.join(build, 'recipes'),
    artifactsDirectoryPath: path.join(build, 'artifacts'),
    rootComponentsToAdd: { [SITE_COMPONENT]: version },
    configuration: {
      'com.dcmms.edge.ModbusAdapter': { merge: { ...devices }, reset: [] },
      [PROCESSOR]: { merge: { assets: devices.devices.map((x) => x.assetId), alarmRules: [...PROCESSOR_DEFAULTS.alarmRules, highPower] }, reset: [] },
      'com.dcmms.edge.Uplink': { merge: { routes: { alarms: ['iotcore'] } }, reset: [] },
      'com.dcmms.edge.Health': { merge: { expectedComponents: IMPLEMENTED_COMPONENTS.map((c) => c.short) }, reset: [] },
    },
  });
  expect(d).toEqual({ status: 'SUCCEEDED', detail: expect.any(String) });
});

afterAll(async () => {
  await cloud?.endAsync();
  await nucleus?.close().catch(() => undefined);
  await sim?.close();
  process.env['PATH'] = savedPath;
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('every component RUNNING, each in the arm64 node under QEMU', async () => {
  const names = IMPLEMENTED_COMPONENTS.map((c) => c.name);
  await waitFor(() => names.every((n) => nucleus.services.state(n) === 'RUNNING'), 180_000, 'every component RUNNING');
  process.stderr.write(`arm64 bundle: every component RUNNING ${Math.round((Date.now() - deployedAt) / 1000)} s after the deployment was submitted\n`);
  for (const n of names) {
    const pids = componentPids(nucleus.rootDir, n, version);
    expect([n, pids.length]).toEqual([n, 1]);
    const argv = fs.readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0');
    expect([n, path.basename(argv[0]!), argv[1]]).toEqual([n, toolchain.QEMU, tree.node]);
    firstPids.set(n, pids[0]!);
  }
});

test("every simulated device's telemetry is in the Processor's store (read on x64 while arm64 writes it)", async () => {
  const file = path.join(nucleus.rootDir, 'work', PROCESSOR, 'raw.db');
  const assets = sim.deviceConfig({ pollIntervalMs: 1000 }).devices.map((d) => d.assetId);
  /** The assets with at least one stored sample: one series of each looked at. */
  const stored = (): string[] => {
    if (!fs.existsSync(file)) return [];
    let r;
    try {
      r = openStoreReader(file);
    } catch {
      return []; // created, not initialised yet by the Processor
    }
    try {
      const firstSeries = new Map(r.listSeries().map((x) => [x.assetId, x]));
      return [...firstSeries.values()].filter((x) => r.range({ assetId: x.assetId, point: x.point }, 0, 2 ** 46).length > 0).map((x) => x.assetId);
    } finally {
      r.close();
    }
  };
  let lastLook = 0;
  let found: string[] = [];
  await waitFor(
    () => {
      // A look opens the file and reads: once a second is plenty.
      if (Date.now() - lastLook >= 1000) {
        lastLook = Date.now();
        found = stored();
      }
      return assets.every((a) => found.includes(a));
    },
    120_000,
    'a stored sample of every device',
  );
  expect(found).toEqual(expect.arrayContaining(assets));
});

test('an alarm raised by the Processor reaches IoT Core through the Uplink', async () => {
  await waitFor(() => ['INV-01', 'INV-02'].every((a) => cloudAlarms.some((x) => x.type === 'high_power' && x.assetId === a && x.state === 'raised')), 120_000, 'the high_power alarms at IoT Core');
  // MLInference validated its three models with a trial inference in onnxruntime on arm64.
  const mlLog = fs.readFileSync(path.join(nucleus.rootDir, 'logs', 'com.dcmms.edge.MLInference.log'), 'utf8');
  const inService = mlLog.split('\n').filter((l) => l.includes('"msg":"model in service"'));
  for (const kind of ['fault', 'anomaly', 'forecast']) expect([kind, inService.some((l) => l.includes(`"model":"${kind}"`))]).toEqual([kind, true]);
  // And nothing crashed on the way: every component still RUNNING in the process it started in.
  for (const [n, pid] of firstPids) expect([n, nucleus.services.state(n), componentPids(nucleus.rootDir, n, version)]).toEqual([n, 'RUNNING', [pid]]);
});

test('the store written on arm64 opens clean on x64 with the same data, and what x64 writes reads the same on arm64', async () => {
  // Stopped first: the files are then the Processor's last committed state.
  await nucleus.close();
  const file = path.join(nucleus.rootDir, 'work', PROCESSOR, 'raw.db');
  const onArm = await digest('arm64', file);
  const onX64 = await digest('x64', file);
  expect(onArm.arch).toBe('arm64');
  expect(onArm.integrity).toBe('ok');
  expect(onX64.integrity).toBe('ok');
  expect(Object.keys(onArm.tables).length).toBeGreaterThan(2);
  expect(onX64.tables).toEqual(onArm.tables);
  // x64 writes (and checkpoints) rows of every kind; arm64 reads them back identically.
  const afterX64Write = await digest('x64', file, true);
  expect(afterX64Write.tables['portability_x64']?.count).toBe(1000);
  const backOnArm = await digest('arm64', file);
  expect(backOnArm.integrity).toBe('ok');
  expect(backOnArm.tables).toEqual(afterX64Write.tables);
  // And the other way round once more: arm64 writes, x64 reads.
  const afterArmWrite = await digest('arm64', file, true);
  expect(afterArmWrite.tables['portability_arm64']?.count).toBe(1000);
  expect(await digest('x64', file)).toEqual({ ...afterArmWrite, arch: 'x64' });
});
