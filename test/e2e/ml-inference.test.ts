/**
 * MLInference end to end, with what ships: the BUILT ModbusAdapter, Processor, MLInference and
 * Models components (greengrass-build/ recipes and artifacts, started by the local runtime as their
 * own processes; the models folder reaches MLInference through the recipe's DCMMS_MODELS_DIR)
 * against the site simulator at a longitude where the sun stands at about 10:30 now:
 *
 *  - MlResult for every simulated inverter: a fault probability in 0..1 and an anomaly score in
 *    -1..1 from models 1.0.0, and the site's 4-hour forecast (16 steps of 15 minutes);
 *  - a Models component at a new version with a truncated fault.onnx is refused: MLInference
 *    reports degraded with the rejection naming the file, and the results keep coming from the
 *    models 1.0.0 it kept.
 *
 * History: a window is 15 minutes (the forecast's 4 hours), longer than a test. The history
 * MLInference reads from the store at start is seeded: the first processed reading of each asset,
 * repeated once a minute for the last 255 minutes, in a store file of its own given to MLInference
 * as `storePath` (the Processor's own file is its writer's alone). Live telemetry then replaces the
 * recent minutes. The fault and anomaly models run every 60 s (the shortest interval the
 * configuration allows), the forecast too here; the first evaluation is one interval after the
 * component starts, and the bad models deployment restarts it, so the file takes about two and a
 * half minutes.
 *
 * Needs `npm run build` first (npm test does it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { simulatorMlInferenceConfig } from '../../components/ml-inference/testing/sim-config';
import { filters, pubsubResource, type ComponentHealth, type MlResult, type TelemetryMessage } from '../../components/lib/contract';
import { openStore, type StoreSample } from '../../components/lib/store';
import type { IpcClient } from '../../scripts/runtime/client';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import { version } from '../../package.json';
import { startNucleus, pubsubPolicy, type Harness } from '../helpers/nucleus';
import { componentPids } from '../helpers/processes';
import { tmpDir, waitFor } from '../helpers/wait';

jest.setTimeout(300_000);

const PROJECT = path.resolve(__dirname, '../..');
const BUILD = path.join(PROJECT, 'greengrass-build');
const SITE = 'ml-site';
const ADAPTER = 'com.dcmms.edge.ModbusAdapter';
const PROCESSOR = 'com.dcmms.edge.Processor';
const ML = 'com.dcmms.edge.MLInference';
const MODELS = 'com.dcmms.edge.Models';
const MODELS_VERSION = '1.0.0';
const BAD_MODELS_VERSION = '1.0.1';
const OBSERVER = 'com.test.MlObserver';
const INVERTERS = ['INV-01', 'INV-02', 'INV-03'];
const MINUTE_MS = 60_000;
const HISTORY_MIN = 255;
const now = new Date();
const LONGITUDE = (((10.5 - (now.getUTCHours() + now.getUTCMinutes() / 60)) * 15 + 540) % 360) - 180;
const LATITUDE = 37;

let sim: SiteSimulator;
let h: Harness;
let observer: IpcClient;
let work: string;
const results: MlResult[] = [];
const health: ComponentHealth[] = [];
const firstReading = new Map<string, TelemetryMessage>();

/** Every numeric point of each asset's first reading, once a minute for the minutes before `untilMs`. */
function seedStore(file: string, untilMs: number): number {
  const store = openStore({ path: file }, { synchronous: 'NORMAL' });
  const last = Math.floor(untilMs / MINUTE_MS) - 1;
  const samples: StoreSample[] = [];
  for (let m = last - HISTORY_MIN + 1; m <= last; m++) {
    for (const msg of firstReading.values()) {
      for (const [point, p] of Object.entries(msg.points)) {
        if (typeof p.v === 'number' && Number.isFinite(p.v)) samples.push({ assetId: msg.assetId, point, ts: m * MINUTE_MS + 30_000, v: p.v, q: 'good' });
      }
    }
  }
  const r = store.tryAppend(samples);
  store.flush();
  store.close();
  if (r.rejected > 0) throw new Error(`seed store refused ${r.rejected} samples: ${JSON.stringify(r.reasons)}`);
  return samples.length;
}

/** The built Models component at another version, with fault.onnx cut in half. */
function corruptModels(dir: string): void {
  const recipe = fs.readFileSync(path.join(BUILD, 'recipes', `${MODELS}-${MODELS_VERSION}.yaml`), 'utf8');
  expect(recipe).toContain(`ComponentVersion: ${MODELS_VERSION}`);
  fs.mkdirSync(path.join(dir, 'recipes'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'recipes', `${MODELS}-${BAD_MODELS_VERSION}.yaml`), recipe.replace(`ComponentVersion: ${MODELS_VERSION}`, `ComponentVersion: ${BAD_MODELS_VERSION}`));
  const from = path.join(BUILD, 'artifacts', MODELS, MODELS_VERSION);
  const to = path.join(dir, 'artifacts', MODELS, BAD_MODELS_VERSION);
  fs.mkdirSync(to, { recursive: true });
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(to, f));
  const fault = fs.readFileSync(path.join(to, 'fault.onnx'));
  fs.writeFileSync(path.join(to, 'fault.onnx'), fault.subarray(0, Math.floor(fault.length / 2)));
}

beforeAll(async () => {
  for (const n of [`${ADAPTER}-${version}`, `${PROCESSOR}-${version}`, `${ML}-${version}`, `${MODELS}-${MODELS_VERSION}`]) {
    if (!fs.existsSync(path.join(BUILD, 'recipes', `${n}.yaml`))) throw new Error(`greengrass-build/ has no ${n} recipe: run \`npm run build\` (npm test does)`);
  }
  work = tmpDir('/tmp/ml-e2e-');
  sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: INVERTERS.length, cloudiness: 0, latitude: LATITUDE, longitude: LONGITUDE, startTime: now, timeScale: 1 });
  h = await startNucleus();
  const observed = await h.deploy([
    {
      name: OBSERVER,
      accessControl: pubsubPolicy(OBSERVER, ['SubscribeToTopic'], [pubsubResource('processedTelemetry', { siteId: SITE }), pubsubResource('mlResult', { siteId: SITE }), pubsubResource('componentHealth', { siteId: SITE })]),
    },
  ]);
  expect(observed.status).toBe('SUCCEEDED');
  observer = await h.client(OBSERVER);
  const subs = [
    [filters.processedTelemetry(SITE).filter, (m: unknown) => void (firstReading.has((m as TelemetryMessage).assetId) || firstReading.set((m as TelemetryMessage).assetId, m as TelemetryMessage))],
    [filters.mlResult(SITE).filter, (m: unknown) => void results.push(m as MlResult)],
    [filters.componentHealth(SITE).filter, (m: unknown) => void health.push(m as ComponentHealth)],
  ] as const;
  for (const [topic, fn] of subs) {
    const s = observer.subscribeToTopic({ topic });
    s.on('message', (m) => fn(m.jsonMessage?.message));
    await s.activate();
  }

  // The plant first: its first processed readings are the seeded history.
  const devices = sim.deviceConfig({ pollIntervalMs: 1000 });
  const plant = await h.run({
    recipeDirectoryPath: path.join(BUILD, 'recipes'),
    artifactsDirectoryPath: path.join(BUILD, 'artifacts'),
    rootComponentsToAdd: { [ADAPTER]: version, [PROCESSOR]: version },
    configuration: {
      [ADAPTER]: { merge: { siteId: SITE, metricsIntervalMs: 1000, ...devices }, reset: [] },
      [PROCESSOR]: { merge: { siteId: SITE, metricsIntervalMs: 1000, assets: devices.devices.map((d) => d.assetId) }, reset: [] },
    },
  });
  expect(plant.status).toBe('SUCCEEDED');
  const config = simulatorMlInferenceConfig(sim.devices(), { latitude: LATITUDE, longitude: LONGITUDE });
  const needed = [...Object.keys(config.inverters), config.site.weatherStation, config.site.tracker];
  await waitFor(() => needed.every((a) => firstReading.has(a)), 30_000, `a processed reading of ${needed.join(', ')}`);
  const seed = path.join(work, 'seed.db');
  expect(seedStore(seed, Date.now())).toBeGreaterThan(HISTORY_MIN * 50);

  const deployed = await h.run({
    recipeDirectoryPath: path.join(BUILD, 'recipes'),
    artifactsDirectoryPath: path.join(BUILD, 'artifacts'),
    rootComponentsToAdd: { [ML]: version },
    configuration: {
      // The forecast as often as the others (its default is every 15 minutes).
      [ML]: { merge: { siteId: SITE, metricsIntervalMs: 1000, ...config, storePath: seed, forecast: { enabled: true, intervalMs: 60_000 } }, reset: [] },
    },
  });
  expect(deployed.status).toBe('SUCCEEDED');
});

afterAll(async () => {
  await observer?.close();
  await h?.close();
  await sim?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const scored = (kind: 'fault' | 'anomaly', after = 0): Set<string> => new Set(results.filter((r) => r.model === kind && r.ts > after).map((r) => r.assetId));

test('MlResult for every simulated inverter (fault and anomaly scores in range) and the site forecast, from models 1.0.0; MLInference running', async () => {
  await waitFor(() => INVERTERS.every((a) => scored('fault').has(a) && scored('anomaly').has(a)) && results.some((r) => r.model === 'forecast'), 150_000, 'fault and anomaly results for every inverter, and a forecast');
  for (const r of results) {
    expect(r.siteId).toBe(SITE);
    expect(r.modelVersion).toBe('1.0.0');
    expect(r.inferenceMs).toBeGreaterThanOrEqual(0);
    if (r.model === 'fault') {
      expect(r.score).toBeGreaterThanOrEqual(0);
      expect(r.score).toBeLessThanOrEqual(1);
    }
    if (r.model === 'anomaly') {
      expect(r.score).toBeGreaterThanOrEqual(-1);
      expect(r.score).toBeLessThanOrEqual(1);
    }
  }
  // A clear morning's normal plant: the classifier does not call a fault.
  for (const r of results.filter((x) => x.model === 'fault')) expect(r.score).toBeLessThan(0.5);
  const fc = results.find((r) => r.model === 'forecast')!;
  expect(fc.assetId).toBe('site');
  expect(fc.forecast?.stepMs).toBe(15 * MINUTE_MS);
  expect(fc.forecast?.values).toHaveLength(16);
  const capacity = INVERTERS.length * 60_000;
  for (const v of fc.forecast!.values) expect(v >= 0 && v <= 2 * capacity).toBe(true);
  await waitFor(() => health.some((x) => x.componentName === ML && x.state === 'running'), 30_000, 'MLInference running (models in service, store readable)');
});

test('a Models version with a truncated fault.onnx is refused: MLInference degraded naming the file, the kept 1.0.0 models still serving', async () => {
  const bad = path.join(work, 'bad-models');
  corruptModels(bad);
  const [pid] = componentPids(h.nucleus.rootDir, ML, version);
  const mark = Math.max(...results.map((r) => r.ts));
  const d = await h.run({
    recipeDirectoryPath: path.join(bad, 'recipes'),
    artifactsDirectoryPath: path.join(bad, 'artifacts'),
    rootComponentsToAdd: { [MODELS]: BAD_MODELS_VERSION },
  });
  expect(d.status).toBe('SUCCEEDED');
  // The models folder is a new path: the runtime restarts MLInference with it.
  await waitFor(() => {
    const p = componentPids(h.nucleus.rootDir, ML, version);
    return p.length > 0 && p[0] !== pid;
  }, 30_000, 'MLInference restarted with the new models folder');

  const degraded = (x: ComponentHealth): boolean => x.componentName === ML && x.state === 'degraded' && /fault model .*fault\.onnx rejected \(corrupt\)/.test(x.metrics.lastError?.message ?? '');
  await waitFor(() => health.some(degraded), 30_000, 'MLInference degraded, naming the rejected fault.onnx');
  const report = health.find(degraded)!;
  expect(report.metrics.lastError!.message).toContain(`${BAD_MODELS_VERSION}`);
  expect(report.metrics.rejections['model_corrupt']).toBeGreaterThanOrEqual(1);

  await waitFor(() => INVERTERS.every((a) => scored('fault', mark).has(a) && scored('anomaly', mark).has(a)), 150_000, 'fault and anomaly results again after the restart');
  for (const r of results.filter((x) => x.ts > mark)) expect(r.modelVersion).toBe('1.0.0');
  const log = fs.readFileSync(path.join(h.nucleus.rootDir, 'logs', `${ML}.log`), 'utf8');
  const refused = log.split('\n').filter((l) => l.includes('model rejected; the previous model stays in service'));
  expect(refused.length).toBeGreaterThanOrEqual(1);
  expect(refused[0]).toContain(`"file":"${path.join(h.nucleus.rootDir, 'packages', 'artifacts', MODELS, BAD_MODELS_VERSION, 'fault.onnx')}"`);
  expect(refused[0]).toContain('"reason":"corrupt"');
  expect(refused[0]).toContain('"versionInService":"1.0.0"');
  // Still degraded while the bad file is the models folder's.
  expect(health.filter((x) => x.componentName === ML).at(-1)?.state).toBe('degraded');
});
