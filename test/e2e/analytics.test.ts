/**
 * Analytics end to end, with what ships: the BUILT ModbusAdapter, Processor and Analytics
 * (greengrass-build/ recipes and bundles, started by the local runtime as their own processes; the
 * Processor's store path reaches Analytics through the recipe's DCMMS_PROCESSOR_STORE) against the
 * site simulator at a longitude where the sun stands at about 10:30 now:
 *
 *  - every kind but iv_curve is published for the simulated plant, the tracker within a degree of
 *    its ideal angle, Analytics healthy (the store readable);
 *  - tracker-offset raises tracker_misalignment; Analytics killed with SIGKILL is restarted by the
 *    runtime and does not raise it again (its journal); the fault cleared, the same alarm clears;
 *  - `dcmms-edge analytics --root` prints the results and the active alarm;
 *  - a deployment naming a weather station that is not configured fails with a message naming the
 *    key, and Analytics keeps running.
 *
 * Needs `npm run build` first (npm test does it).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { simulatorAnalyticsConfig } from '../../components/analytics/testing/sim-config';
import { filters, pubsubResource, type AlarmMessage, type AnalyticsMessage, type ComponentHealth } from '../../components/lib/contract';
import type { IpcClient } from '../../scripts/runtime/client';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import { version } from '../../package.json';
import { startNucleus, pubsubPolicy, type Harness } from '../helpers/nucleus';
import { componentPids } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const exec = promisify(execFile);
const PROJECT = path.resolve(__dirname, '../..');
const CLI = path.join(PROJECT, 'dist', 'cli.js');
const BUILD = path.join(PROJECT, 'greengrass-build');
const SITE = 'analytics-site';
const ADAPTER = 'com.dcmms.edge.ModbusAdapter';
const PROCESSOR = 'com.dcmms.edge.Processor';
const ANALYTICS = 'com.dcmms.edge.Analytics';
const OBSERVER = 'com.test.AnalyticsObserver';
const now = new Date();
const LONGITUDE = (((10.5 - (now.getUTCHours() + now.getUTCMinutes() / 60)) * 15 + 540) % 360) - 180;
const LATITUDE = 37;

let sim: SiteSimulator;
let h: Harness;
let observer: IpcClient;
const results: AnalyticsMessage[] = [];
const alarms: AlarmMessage[] = [];
const health: ComponentHealth[] = [];

const latest = (assetId: string, kind: string): AnalyticsMessage | undefined => results.filter((r) => r.assetId === assetId && r.kind === kind).at(-1);

beforeAll(async () => {
  for (const n of [ADAPTER, PROCESSOR, ANALYTICS]) {
    if (!fs.existsSync(path.join(BUILD, 'recipes', `${n}-${version}.yaml`))) throw new Error(`greengrass-build/ has no ${n} recipe: run \`npm run build\` (npm test does)`);
  }
  sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 3, cloudiness: 0, latitude: LATITUDE, longitude: LONGITUDE, startTime: now, timeScale: 1 });
  h = await startNucleus();
  const observed = await h.deploy([
    {
      name: OBSERVER,
      accessControl: pubsubPolicy(OBSERVER, ['SubscribeToTopic'], [pubsubResource('analytics', { siteId: SITE }), pubsubResource('alarms', { siteId: SITE }), pubsubResource('componentHealth', { siteId: SITE })]),
    },
  ]);
  expect(observed.status).toBe('SUCCEEDED');
  observer = await h.client(OBSERVER);
  const subs = [
    [filters.analytics(SITE).filter, (m: unknown) => void results.push(m as AnalyticsMessage)],
    [filters.alarms(SITE).filter, (m: unknown) => void ((m as AlarmMessage).source === 'analytics' && alarms.push(m as AlarmMessage))],
    [filters.componentHealth(SITE).filter, (m: unknown) => void health.push(m as ComponentHealth)],
  ] as const;
  for (const [topic, fn] of subs) {
    const s = observer.subscribeToTopic({ topic });
    s.on('message', (m) => fn(m.jsonMessage?.message));
    await s.activate();
  }

  const devices = sim.deviceConfig({ pollIntervalMs: 500 });
  const plant = simulatorAnalyticsConfig(sim.devices(), { latitude: LATITUDE, longitude: LONGITUDE });
  const deployed = await h.run({
    recipeDirectoryPath: path.join(BUILD, 'recipes'),
    artifactsDirectoryPath: path.join(BUILD, 'artifacts'),
    rootComponentsToAdd: { [ADAPTER]: version, [PROCESSOR]: version, [ANALYTICS]: version },
    configuration: {
      [ADAPTER]: { merge: { siteId: SITE, metricsIntervalMs: 1000, ...devices }, reset: [] },
      [PROCESSOR]: { merge: { siteId: SITE, metricsIntervalMs: 1000, assets: devices.devices.map((d) => d.assetId) }, reset: [] },
      [ANALYTICS]: {
        merge: { siteId: SITE, metricsIntervalMs: 1000, ...plant, evaluateIntervalMs: 1000, windowMs: 60000, alarmThresholds: { trackerDeviationDeg: 4, trackerForMs: 2000 } },
        reset: [],
      },
    },
  });
  expect(deployed.status).toBe('SUCCEEDED');
});

afterAll(async () => {
  await observer?.close();
  await h?.close();
  await sim?.close();
});

test('every kind for the simulated plant; the tracker on its ideal angle; Analytics running with the store read', async () => {
  const kinds = ['performance_ratio', 'performance_ratio_temp_corrected', 'health_score', 'string_imbalance', 'tracker_deviation', 'soiling'];
  await waitFor(() => kinds.every((k) => results.some((r) => r.kind === k)), 30_000, 'every kind published');
  await waitFor(() => {
    const t = latest('TRK-01', 'tracker_deviation');
    return t !== undefined && t.value !== null && (t.details?.['samples'] as number) > 0;
  }, 30_000, 'a tracker deviation from samples');
  expect(Math.abs(latest('TRK-01', 'tracker_deviation')!.value!)).toBeLessThan(1);
  expect(results.filter((r) => r.kind === 'performance_ratio').map((r) => r.assetId)).toEqual(expect.arrayContaining(['INV-01', 'INV-02', 'INV-03', 'site']));
  await waitFor(() => health.some((r) => r.componentName === ANALYTICS && r.state === 'running'), 30_000, 'Analytics running (not degraded: the store is readable)');
});

test('tracker-offset raises tracker_misalignment; a SIGKILLed Analytics comes back without raising it again; cleared with the fault', async () => {
  const fault = sim.injectFault({ kind: 'tracker-offset', offsetDeg: 8 });
  await waitFor(() => alarms.some((a) => a.type === 'tracker_misalignment' && a.transition === 'raised'), 60_000, 'tracker_misalignment raised');
  const raised = alarms.find((a) => a.type === 'tracker_misalignment' && a.transition === 'raised')!;

  const [pid] = componentPids(h.nucleus.rootDir, ANALYTICS, version);
  process.kill(pid!, 'SIGKILL');
  await waitFor(() => {
    const p = componentPids(h.nucleus.rootDir, ANALYTICS, version);
    return p.length > 0 && p[0] !== pid;
  }, 30_000, 'Analytics restarted by the runtime');
  const mark = results.length;
  await waitFor(() => results.slice(mark).some((r) => r.kind === 'tracker_deviation' && r.value !== null && Math.abs(r.value - 8) < 1.5), 30_000, 'figures again after the restart');
  expect(alarms.filter((a) => a.type === 'tracker_misalignment' && a.transition === 'raised' && a.replayed !== true).map((a) => a.alarmId)).toEqual([raised.alarmId]);

  const out = (await exec(process.execPath, [CLI, 'analytics', '--root', h.nucleus.rootDir], { cwd: PROJECT, timeout: 30_000 })).stdout;
  expect(out).toMatch(/TRK-01\s+tracker_deviation\s+\d/);
  expect(out).toMatch(/INV-01\s+performance_ratio/);
  expect(out).toMatch(/active alarms: \n\s+TRK-01\s+tracker_misalignment \(medium\)/);

  sim.clearFault(fault);
  await waitFor(() => alarms.some((a) => a.alarmId === raised.alarmId && a.state === 'cleared'), 90_000, 'tracker_misalignment cleared');
});

test('a weather station that is not configured fails the deployment with a message naming the key; Analytics keeps running', async () => {
  const before = componentPids(h.nucleus.rootDir, ANALYTICS, version);
  const bad = { inverters: { 'INV-09': { pStcKw: 72, gammaPerK: -0.0035, weatherStation: 'WS-09', combiner: '', tracker: '' } } };
  const d = await h.run({ configuration: { [ANALYTICS]: { merge: bad, reset: [] } } });
  expect(d.status).toBe('FAILED');
  expect(JSON.stringify(d)).toMatch(/inverters\.INV-09\.weatherStation/);
  expect(componentPids(h.nucleus.rootDir, ANALYTICS, version)).toEqual(before);
});
