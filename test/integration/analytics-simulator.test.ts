/**
 * Analytics against the site simulator: the real ModbusAdapter polls the simulated plant, the
 * real Processor validates and stores, the real Analytics computes; all in this process, each
 * through its own real bus on one FakeNucleus (as local-control-pymodbus.test.ts does). The
 * simulator's faults must show in the figures and alarms, checked against `sim.state()`'s truth:
 *
 *  - healthy plant: tracker deviation within a degree (the simulated controller runs SPA with
 *    backtracking too), every inverter's PR near what the plant's true AC power and POA give,
 *    string ratios near 100 %, no alarm;
 *  - tracker-offset: the deviation equals the truth's actual - ideal, tracker_misalignment raised,
 *    and cleared when the fault is;
 *  - string-fault on one input: string_imbalance names it with the truth's current ratio,
 *    string_underperformance raised for that string only;
 *  - soiling on one inverter's array: its PR falls by the lost share (the reference cell stays
 *    clean) while its peers' do not, and low_pr is raised for it alone;
 *  - IV scans on demand through the adapter's iv_scan command: a healthy string is `normal`, one
 *    with the simulator's series-resistance fault `high_series_resistance`.
 *
 * The simulator runs in real time with the gateway's clock (time scale 1), at a longitude where
 * the sun stands at about 10:30 local solar time now, whatever the hour the test runs: the adapter
 * stamps samples with the gateway's time, and Analytics computes the sun for that time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAnalytics, type Analytics } from '../../components/analytics/analytics';
import { analyticsConfigSpec } from '../../components/analytics/config';
import { simulatorAnalyticsConfig } from '../../components/analytics/testing/sim-config';
import { createBus, type Bus } from '../../components/lib/bus';
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import { filters, type AlarmMessage, type AnalyticsMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import { processorConfigSpec } from '../../components/processor/config';
import { createProcessor, type Processor } from '../../components/processor/processor';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';

jest.setTimeout(240_000);

const SITE = 'analytics-sim';
const now = new Date();
const utcHours = now.getUTCHours() + now.getUTCMinutes() / 60;
/** Local solar time about 10:30 now. */
const LONGITUDE = ((((10.5 - utcHours) * 15 + 540) % 360) - 180);
const LATITUDE = 37;

let sim: SiteSimulator;
let dir: string;
const nucleus = new FakeNucleus({ componentName: 'com.test.AnalyticsSimulator' });
const buses: Bus[] = [];
let adapter: ModbusAdapter | undefined;
let processor: Processor | undefined;
let analytics: Analytics | undefined;
const failures: unknown[] = [];

const results: AnalyticsMessage[] = [];
const alarms: AlarmMessage[] = [];
const waiters = new Set<() => void>();
const wake = (): void => {
  for (const w of [...waiters]) w();
};

function until<T>(find: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const v = find();
      if (v === undefined || v === false) return;
      clearTimeout(timer);
      waiters.delete(check);
      resolve(v);
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    waiters.add(check);
    check();
  });
}

/** The newest result of (asset, kind) published after index `from`. */
function latest(assetId: string, kind: string, from = 0): AnalyticsMessage | undefined {
  return results.slice(from).filter((r) => r.assetId === assetId && r.kind === kind).at(-1);
}

async function newBus(): Promise<{ bus: Bus; metrics: ReturnType<typeof createMetrics> }> {
  const metrics = createMetrics({ clock: systemClock });
  const bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock: systemClock });
  buses.push(bus);
  await bus.connect();
  return { bus, metrics };
}

beforeAll(async () => {
  sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 3, cloudiness: 0, latitude: LATITUDE, longitude: LONGITUDE, startTime: now, timeScale: 1 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analytics-sim-'));
  const observer = await newBus();
  await observer.bus.subscribe(filters.analytics(SITE), (m: AnalyticsMessage) => {
    results.push(m);
    wake();
  });
  await observer.bus.subscribe(filters.alarms(SITE), (a: AlarmMessage) => {
    if (a.source === 'analytics') alarms.push(a);
    wake();
  });

  const fail = (err: unknown): void => void failures.push(err);
  const devices = sim.deviceConfig({ pollIntervalMs: 500 });
  const p = await newBus();
  processor = createProcessor(
    { bus: p.bus, logger: silentLogger, metrics: p.metrics, clock: systemClock, component: 'processor', fail, workDir: dir },
    validateConfig(processorConfigSpec, { siteId: SITE, storePath: path.join(dir, 'raw.db'), assets: devices.devices.map((d) => d.assetId) }),
  );
  await processor.start();

  const a = await newBus();
  const plant = simulatorAnalyticsConfig(sim.devices(), { latitude: LATITUDE, longitude: LONGITUDE });
  analytics = createAnalytics(
    { bus: a.bus, logger: silentLogger, metrics: a.metrics, clock: systemClock, component: 'analytics', fail, workDir: dir },
    validateConfig(analyticsConfigSpec, {
      siteId: SITE,
      storePath: path.join(dir, 'raw.db'),
      dbPath: path.join(dir, 'analytics.db'),
      ...plant,
      evaluateIntervalMs: 1000,
      // One minute: the shortest rolling window, so the soiling phase fits in a test.
      windowMs: 60000,
      alarmThresholds: { ...analyticsConfigSpec.defaults.alarmThresholds, trackerDeviationDeg: 4, trackerForMs: 2000, stringForMs: 2000, lowPrBelow: 65, lowPrForMs: 0, soilingRatioBelow: 80 },
      // Soiling from a minute of light (30 min by default), and cleaning worth it at once.
      soilingMinUsedMs: 60000,
      cleaningCost: 0.01,
    }),
  );
  await analytics.start();

  const m = await newBus();
  adapter = createModbusAdapter({ bus: m.bus, logger: silentLogger, metrics: m.metrics, clock: systemClock }, validateConfig(modbusConfigSpec, { siteId: SITE, ...devices }));
  await adapter.start();
});

afterAll(async () => {
  await adapter?.close();
  await analytics?.close();
  await processor?.close();
  await Promise.all(buses.map((b) => b.close()));
  await sim?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  expect(failures).toEqual([]);
});

test('healthy plant: the tracker on its ideal angle, strings in line, no alarm', async () => {
  const t = await until(() => {
    const r = latest('TRK-01', 'tracker_deviation');
    return r && r.value !== null && (r.details?.['samples'] as number) > 0 ? r : undefined;
  }, 20_000, 'a tracker deviation figure');
  const truth = sim.state().tracker as { actualDeg: number; idealDeg?: number };
  expect(Math.abs(t.value!)).toBeLessThan(1);
  if (truth.idealDeg !== undefined) expect(t.details?.['idealDeg'] as number).toBeCloseTo(truth.idealDeg, 0);
  const s = await until(() => {
    const r = latest('INV-01', 'string_imbalance');
    return r && r.value !== null ? r : undefined;
  }, 20_000, 'a string imbalance figure');
  expect(s.value!).toBeGreaterThan(95);
  expect(alarms).toEqual([]);
});

test('tracker-offset: the deviation is the truth\'s, tracker_misalignment raised, and cleared with the fault', async () => {
  const id = sim.injectFault({ kind: 'tracker-offset', offsetDeg: 8 });
  const raised = await until(() => alarms.find((a) => a.type === 'tracker_misalignment' && a.state === 'raised'), 30_000, 'tracker_misalignment raised');
  expect(raised).toMatchObject({ assetId: 'TRK-01', severity: 'medium', threshold: 4 });
  // The motor takes a few seconds to reach ideal + 8 (the alarm may come on the way, past 4°).
  const f = await until(() => {
    const r = latest('TRK-01', 'tracker_deviation');
    return r && r.value !== null && Math.abs(r.value - 8) < 1 ? r : undefined;
  }, 30_000, 'the row settled 8° off');
  const truth = sim.state().tracker as { actualDeg: number; idealDeg?: number };
  if (truth.idealDeg !== undefined) expect(f.value!).toBeCloseTo(truth.actualDeg - truth.idealDeg, 0);
  sim.clearFault(id);
  await until(() => alarms.find((a) => a.type === 'tracker_misalignment' && a.state === 'cleared' && a.alarmId === raised.alarmId), 30_000, 'tracker_misalignment cleared');
});

test('string-fault: string_imbalance names the string with the truth\'s current ratio, string_underperformance raised for it alone', async () => {
  const id = sim.injectFault({ kind: 'string-fault', unit: 2, string: 3, factor: 0.5 });
  const raised = await until(() => alarms.find((a) => a.type === 'string_underperformance' && a.state === 'raised'), 30_000, 'string_underperformance raised');
  expect(raised).toMatchObject({ assetId: 'INV-02', point: '160.module.3.DCA', details: expect.objectContaining({ subject: '3' }) });
  const f = latest('INV-02', 'string_imbalance')!;
  expect(f.details).toMatchObject({ worstString: '3', flagged: ['3'] });
  const strings = sim.state().inverters[1]!.strings;
  const peers = strings.filter((s) => s.id !== 3).map((s) => s.a).sort((a, b) => a - b);
  const truthRatio = (strings.find((s) => s.id === 3)!.a / peers[1]!) * 100;
  expect(f.value!).toBeCloseTo(truthRatio, -1);
  expect(Math.abs(f.value! - 50)).toBeLessThan(5);
  expect(latest('INV-01', 'string_imbalance')!.value!).toBeGreaterThan(95);
  expect(alarms.filter((a) => a.type === 'string_underperformance' && a.state === 'raised').map((a) => a.assetId)).toEqual(['INV-02']);
  sim.clearFault(id);
});

test('soiling on one array: its PR falls by the lost share against its clean peers, low_pr raised for it alone', async () => {
  // A healthy minute first: every inverter's PR as the plant's truth gives it.
  const healthy = await until(() => {
    const rs = ['INV-01', 'INV-02', 'INV-03'].map((a) => latest(a, 'performance_ratio'));
    return rs.every((r) => r && r.value !== null) ? rs : undefined;
  }, 150_000, 'a PR figure of every inverter');
  for (const r of healthy) {
    expect(r!.value!).toBeGreaterThan(70);
    expect(r!.value!).toBeLessThan(100);
  }
  const st = sim.state();
  const truthPr = (st.inverters[0]!.acW / (72_000 * (st.weather.poa / 1000))) * 100;
  expect(healthy[0]!.value!).toBeCloseTo(truthPr, -1);

  const mark = results.length;
  sim.injectFault({ kind: 'soiling', unit: 1, loss: 0.4 });
  const low = await until(() => alarms.find((a) => a.type === 'low_pr' && a.state === 'raised'), 150_000, 'low_pr raised');
  expect(low.assetId).toBe('INV-01');
  const soiled = latest('INV-01', 'performance_ratio', mark)!;
  const clean = latest('INV-03', 'performance_ratio', mark)!;
  // 40 % of the light lost: the PR about 0.6 of its clean peer's (the inverter's efficiency barely changes).
  expect(soiled.value! / clean.value!).toBeGreaterThan(0.5);
  expect(soiled.value! / clean.value!).toBeLessThan(0.7);
  expect(alarms.filter((a) => a.type === 'low_pr').map((a) => a.assetId)).toEqual(['INV-01']);

  // The soiling figure: the day's ratio of INV-01 against a clean peer's is what reaches its cells
  // (the truth's soilingRatio, the weather station's cell clean); soiling_loss for INV-01 alone.
  await until(() => alarms.find((a) => a.type === 'soiling_loss' && a.state === 'raised'), 150_000, 'soiling_loss raised');
  const st2 = sim.state();
  const s1 = latest('INV-01', 'soiling')!;
  const s3 = latest('INV-03', 'soiling')!;
  const truth = (st2.inverters[0] as unknown as { soilingRatio: number }).soilingRatio / (st2.inverters[2] as unknown as { soilingRatio: number }).soilingRatio;
  // The day's figure mixes the clean minutes before the fault with the soiled ones: between the two.
  expect(s1.value! / s3.value!).toBeLessThan(0.95);
  expect(s1.value! / s3.value!).toBeGreaterThan(truth - 0.05);
  expect(s1.details).toMatchObject({ cleaning: expect.objectContaining({ recommend: true }), currency: 'EUR' });
  expect(alarms.filter((a) => a.type === 'soiling_loss').map((a) => a.assetId)).toEqual(['INV-01']);
});

test('IV scans on demand: a healthy string is normal, a string with high series resistance is classified so', async () => {
  const mark = results.length;
  const healthyId = analytics!.requestIvScan('CB-03', 1);
  const healthy = await until(() => results.slice(mark).find((r) => r.kind === 'iv_curve' && r.details?.['commandId'] === healthyId), 30_000, 'the healthy scan');
  expect(healthy).toMatchObject({ assetId: 'CB-03', u: '%', details: expect.objectContaining({ classification: 'normal', string: 1, trigger: 'on_demand' }) });
  expect(healthy.value!).toBeGreaterThan(93);

  const fault = sim.injectFault({ kind: 'series-resistance', unit: 3, string: 2, factor: 6 });
  const id = analytics!.requestIvScan('CB-03', 2);
  const bad = await until(() => results.slice(mark).find((r) => r.kind === 'iv_curve' && r.details?.['commandId'] === id), 30_000, 'the faulty string\'s scan');
  expect(bad.details).toMatchObject({ classification: 'high_series_resistance', string: 2 });
  // The truth: that string's series resistance is 6 x the healthy one; the analysis's Rs ratio says about as much.
  const truth = sim.state().combiners[2]!.strings[1]!.iv;
  expect(truth.seriesFactor).toBe(6);
  const rsRatio = (bad.details?.['ratios'] as { rs: number }).rs;
  expect(rsRatio).toBeGreaterThan(2);
  const healthyTruth = sim.state().combiners[2]!.strings[0]!.iv;
  expect([healthyTruth.seriesFactor, healthyTruth.shuntFactor, healthyTruth.degradation]).toEqual([1, 1, 0]);
  sim.clearFault(fault);
});
