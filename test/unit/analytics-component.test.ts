/**
 * The Analytics component's lifecycle and alarms (docs/analytics-component.md), with the FakeClock
 * and the RecordingBus: subscriptions from the contract, the Processor's store (a real store file,
 * written by the store's writer as the Processor writes it) replayed at start so a restart keeps the
 * day, late data announced by a commit notice, figures published every evaluateIntervalMs, the
 * tracker_misalignment alarm's lifecycle through the alarm journal (raise after forMs, null in
 * stow keeps it, clear, a restart neither repeats nor forgets it, sync answered), configuration
 * refusals naming the key, live reconfiguration, an idempotent close.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAnalytics, type Analytics } from '../../components/analytics/analytics';
import { analyticsConfigSpec, type AnalyticsConfig } from '../../components/analytics/config';
import { TrackerMonitor } from '../../components/analytics/tracker';
import { validateConfig } from '../../components/lib/config';
import { ConfigError } from '../../components/lib/errors';
import { componentDecl, pubsubResource, type AlarmMessage, type AlarmSnapshot, type AnalyticsMessage, type LocalFamily, type TelemetryMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { openStore, openStoreReader, type Store, type StoreReader } from '../../components/lib/store';
import { FakeClock, settle } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';

const SITE = 'unit-site';
const MIN = 60_000;
/** 2026-06-21 10:00 UTC at 37 N, 2.5 W: the sun is well up, the row tilted east. */
const T0 = Date.UTC(2026, 5, 21, 10, 0, 0);

const TRACKER = {
  axisAzimuthDeg: 180,
  axisTiltDeg: 0,
  maxAngleDeg: 55,
  gcr: 0.35,
  backtrack: true,
  anglePoint: 'actualAngle',
  statusPoint: 'status',
  stowBits: ['stowed', 'windStow'],
  modePoint: 'mode',
  trackingModes: [0],
};

function config(dir: string, over: Partial<AnalyticsConfig> = {}): Readonly<AnalyticsConfig> {
  return validateConfig(analyticsConfigSpec, {
    siteId: SITE,
    storePath: path.join(dir, 'raw.db'),
    dbPath: path.join(dir, 'analytics.db'),
    trackers: { 'TRK-01': TRACKER },
    alarmThresholds: { ...analyticsConfigSpec.defaults.alarmThresholds, trackerDeviationDeg: 5, trackerForMs: 10 * MIN },
    ...over,
  });
}

class Rig {
  readonly clock = new FakeClock(T0);
  bus = new RecordingBus();
  metrics = createMetrics({ clock: this.clock });
  a!: Analytics;
  store: Store;
  seq = 0;
  failures: unknown[] = [];
  monitor = new TrackerMonitor('TRK-01', TRACKER, { latitude: 37, longitude: -2.5, elevation: 0 });

  constructor(
    readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analytics-unit-')),
    public cfg: Readonly<AnalyticsConfig> = config(dir),
  ) {
    this.store = openStore({ path: path.join(dir, 'raw.db'), clock: this.clock });
  }

  openStore?: (file: string) => StoreReader;

  async start(): Promise<void> {
    this.a = createAnalytics({ bus: this.bus, logger: silentLogger, metrics: this.metrics, clock: this.clock, component: 'analytics', fail: (e) => void this.failures.push(e), workDir: this.dir, ...(this.openStore ? { openStore: this.openStore } : {}) }, this.cfg);
    await this.a.start();
  }

  async restart(): Promise<void> {
    await this.a.close();
    this.bus = new RecordingBus();
    await this.start();
  }

  /** The tracker's points at the clock's time, `offset` degrees off its ideal angle. */
  message(offset: number, status = '', mode = 0): TelemetryMessage {
    const ts = this.clock.now();
    const actual = Math.round((this.monitor.ideal(ts).angle + offset) * 10) / 10;
    return {
      schemaVersion: 1, siteId: SITE, assetId: 'TRK-01', ts, seq: ++this.seq,
      points: { actualAngle: { v: actual, u: 'deg', q: 'good' }, status: { v: status, q: 'good' }, mode: { v: mode, q: 'good' } },
    };
  }

  async live(offset: number, status = '', mode = 0): Promise<void> {
    await this.bus.deliver('processedTelemetry', `site/${SITE}/processed/TRK-01/telemetry`, this.message(offset, status, mode), { strict: true });
  }

  /** As the Processor does: store the sample durably (no live delivery). */
  stored(offset: number, at = this.clock.now()): void {
    const m = { ...this.message(offset), ts: at };
    const ideal = this.monitor.ideal(at).angle;
    m.points['actualAngle'] = { v: Math.round((ideal + offset) * 10) / 10, u: 'deg', q: 'good' };
    this.store.append(Object.entries(m.points).map(([point, p]) => ({ assetId: 'TRK-01', point, ts: at, v: typeof p.v === 'number' ? p.v : p.v === '' ? 0 : Number(p.v), q: p.q, u: p.u })));
    this.store.flush();
  }

  /** Minutes of live telemetry (one message a minute), each followed by the evaluation timer. */
  async minutes(n: number, offset: number, status = '', mode = 0): Promise<void> {
    for (let i = 0; i < n; i++) {
      await this.live(offset, status, mode);
      await this.clock.advanceAsync(MIN);
    }
  }

  figures(kind = 'tracker_deviation'): AnalyticsMessage[] {
    return this.bus.of<AnalyticsMessage>('analytics').filter((m) => m.kind === kind);
  }
  alarms(): AlarmMessage[] {
    return this.bus.of<AlarmMessage>('alarms');
  }

  async close(): Promise<void> {
    await this.a?.close();
    this.store.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

let rig: Rig;
afterEach(async () => {
  expect(rig.bus.invalid).toEqual([]);
  expect(rig.failures).toEqual([]);
  await rig.close();
});

test('subscribes to what the contract declares for Analytics, and publishes an alarm snapshot at start', async () => {
  rig = new Rig();
  await rig.start();
  const declared = componentDecl('com.dcmms.edge.Analytics').topics.pubsub.subscribe;
  const families = rig.bus.subscribed().sort();
  expect(families).toEqual(['alarmSnapshot', 'alarmSync', 'alarms', 'controlResult', 'processedTelemetry', 'storeCommits']);
  expect(families.map((f) => pubsubResource(f as LocalFamily)).sort()).toEqual([...declared].sort());
  expect(rig.bus.of<AlarmSnapshot>('alarmSnapshot')[0]).toMatchObject({ source: 'analytics', siteId: SITE, active: [] });
});

test('tracker deviation every evaluation; tracker_misalignment raised after forMs, kept through stow, cleared when back', async () => {
  rig = new Rig();
  await rig.start();
  await rig.minutes(3, 0.4);
  const ok = rig.figures().at(-1)!;
  expect(ok).toMatchObject({ assetId: 'TRK-01', u: 'deg' });
  expect(Math.abs(ok.value!)).toBeLessThan(0.6);
  expect(ok.details).toMatchObject({ samples: 1 });

  // 12° off: pending from the first evaluation that sees it, raised once 10 minutes have passed.
  await rig.minutes(10, 12);
  expect(rig.alarms()).toHaveLength(0);
  await rig.minutes(1, 12);
  const raised = rig.alarms();
  expect(raised).toHaveLength(1);
  expect(raised[0]).toMatchObject({ assetId: 'TRK-01', type: 'tracker_misalignment', state: 'raised', transition: 'raised', source: 'analytics', severity: 'medium', threshold: 5, point: 'actualAngle' });
  expect(rig.figures().at(-1)!.value).toBeCloseTo(12, 0);

  // Stowed on purpose: no figure (null with the reason), and the alarm stays as it is.
  await rig.minutes(5, 30, 'stowed');
  const stowed = rig.figures().at(-1)!;
  expect(stowed.value).toBeNull();
  expect(stowed.details).toMatchObject({ reason: 'stowed' });
  expect(rig.alarms()).toHaveLength(1);
  // Manual mode likewise.
  await rig.minutes(1, 30, '', 1);
  expect(rig.figures().at(-1)!.details).toMatchObject({ reason: 'not_tracking_mode' });

  await rig.minutes(1, 0.2);
  const cleared = rig.alarms();
  expect(cleared).toHaveLength(2);
  expect(cleared[1]).toMatchObject({ alarmId: raised[0]!.alarmId, state: 'cleared', transition: 'cleared', transitionSeq: 1 });
});

test('a stuck row: the deviation grows as the sun moves on, and tracker_misalignment is raised once it has been past the limit for forMs', async () => {
  rig = new Rig();
  await rig.start();
  const stuckAt = Math.round(rig.monitor.ideal(rig.clock.now()).angle * 10) / 10;
  const deviations: number[] = [];
  let raisedAfter: number | undefined;
  for (let k = 0; k < 90 && raisedAfter === undefined; k++) {
    const ts = rig.clock.now();
    await rig.bus.deliver('processedTelemetry', `site/${SITE}/processed/TRK-01/telemetry`, { schemaVersion: 1, siteId: SITE, assetId: 'TRK-01', ts, seq: ++rig.seq, points: { actualAngle: { v: stuckAt, u: 'deg', q: 'good' }, status: { v: '', q: 'good' }, mode: { v: 0, q: 'good' } } }, { strict: true });
    await rig.clock.advanceAsync(MIN);
    deviations.push(Math.abs(rig.figures().at(-1)!.value!));
    if (rig.alarms().length > 0) raisedAfter = k;
  }
  // 10:00 UTC at 37 N in June: the ideal angle moves about 0.25° a minute; 5° after ~20 min, raised 10 min later.
  expect(deviations[5]!).toBeLessThan(deviations[25]!);
  const firstPast = deviations.findIndex((d) => d > 5);
  expect(firstPast).toBeGreaterThan(5);
  expect(raisedAfter).toBe(firstPast + 10);
  expect(rig.alarms()[0]).toMatchObject({ type: 'tracker_misalignment', state: 'raised' });
});

test('no figure from a stale angle, and none at night', async () => {
  rig = new Rig();
  await rig.start();
  await rig.minutes(1, 0);
  await rig.clock.advanceAsync(5 * MIN);
  expect(rig.figures().at(-1)!.details).toMatchObject({ reason: 'stale_angle' });
  rig.clock.advance(Date.UTC(2026, 5, 21, 23, 0, 0) - rig.clock.now());
  await rig.minutes(1, 0);
  expect(rig.figures().at(-1)).toMatchObject({ value: null, details: { reason: 'night' } });
});

test('a restart keeps a raised alarm (no second raise), clears it when the condition is gone, and answers a sync from the journal', async () => {
  rig = new Rig();
  await rig.start();
  await rig.minutes(12, 15);
  const raised = rig.alarms();
  expect(raised).toHaveLength(1);

  await rig.restart();
  expect(rig.a.activeAlarms().map((a) => a.alarmId)).toEqual([raised[0]!.alarmId]);
  expect(rig.bus.of<AlarmSnapshot>('alarmSnapshot')[0]!.active.map((a) => a.alarmId)).toEqual([raised[0]!.alarmId]);
  await rig.minutes(3, 15);
  expect(rig.alarms()).toHaveLength(0); // still raised, not raised again

  await rig.bus.deliver('alarmSync', `site/${SITE}/alarms/sync`, { schemaVersion: 1, siteId: SITE, ts: rig.clock.now(), requester: 'uplink', from: { analytics: { journalId: raised[0]!.journalId, seq: 1 } } }, { strict: true });
  const replayed = rig.alarms().filter((a) => a.replayed === true);
  expect(replayed.map((a) => [a.alarmId, a.transition])).toEqual([[raised[0]!.alarmId, 'raised']]);

  await rig.minutes(1, 0);
  const cleared = rig.alarms().filter((a) => a.state === 'cleared');
  expect(cleared).toHaveLength(1);
  expect(cleared[0]).toMatchObject({ alarmId: raised[0]!.alarmId, transitionSeq: 1, sourceSeq: 2 });
});

test('at start the day so far is read from the store; late data announced by a commit notice is read too', async () => {
  rig = new Rig();
  // Stored before Analytics runs (it was stopped): the last angle 20° off.
  rig.stored(20, T0 - 2 * MIN);
  rig.stored(20, T0 - MIN);
  await rig.start();
  const fromStore = rig.a.evaluate().find((f) => f.kind === 'tracker_deviation')!;
  expect(fromStore.value).toBeCloseTo(20, 0);
  expect(fromStore.details).toMatchObject({ sampleTs: T0 - MIN });

  // A late sample (stored well after its time) lands in the store's late log; its notice makes
  // Analytics read the asset's day again, and the figure follows the store.
  await rig.clock.advanceAsync(30_000);
  const lateAt = rig.clock.now() - 20_000;
  rig.clock.advance(20_000);
  rig.stored(3, lateAt);
  const head = rig.store.lateLogHead();
  expect(head).toBeGreaterThan(0);
  await rig.bus.deliver('storeCommits', `site/${SITE}/store/commits`, { schemaVersion: 1, siteId: SITE, ts: rig.clock.now(), runId: 'r1', seq: 1, ranges: [{ assetId: 'TRK-01', from: lateAt, to: lateAt, samples: 3 }], lateLogId: head }, { strict: true });
  const after = rig.a.evaluate().find((f) => f.kind === 'tracker_deviation')!;
  expect(after.details).toMatchObject({ sampleTs: lateAt });
  expect(after.value).toBeCloseTo(3, 0);
});

test('the day replayed at start does not dilute the first judgement: the newest angle decides, not the mean of the day', async () => {
  rig = new Rig();
  rig.cfg = config(rig.dir, { alarmThresholds: { ...analyticsConfigSpec.defaults.alarmThresholds, trackerDeviationDeg: 5, trackerForMs: 0 } });
  // 50 minutes on the ideal angle, then 10 minutes 15° off, all in the store (Analytics was stopped).
  for (let k = 60; k > 10; k--) rig.stored(0, T0 - k * MIN);
  for (let k = 10; k >= 1; k--) rig.stored(15, T0 - k * MIN);
  await rig.start();
  await rig.clock.advanceAsync(MIN);
  expect(rig.alarms().map((a) => [a.type, a.state])).toEqual([['tracker_misalignment', 'raised']]);
});

test('bad input is counted and dropped, never fatal: another site, a topic naming another asset, a non-number angle', async () => {
  rig = new Rig();
  await rig.start();
  await rig.bus.deliver('processedTelemetry', `site/${SITE}/processed/TRK-01/telemetry`, { ...rig.message(0), siteId: 'other-site' });
  await rig.bus.deliver('processedTelemetry', `site/${SITE}/processed/TRK-02/telemetry`, rig.message(0));
  const m = rig.message(0);
  m.points['actualAngle'] = { v: 'jammed', q: 'good' };
  await rig.bus.deliver('processedTelemetry', `site/${SITE}/processed/TRK-01/telemetry`, m);
  await rig.clock.advanceAsync(MIN);
  const r = rig.metrics.snapshot().rejections;
  expect(r['site_mismatch']).toBe(1);
  expect(r['topic_mismatch']).toBe(1);
  expect(rig.figures().at(-1)!.details).toMatchObject({ reason: 'missing_angle' });
});

test('configuration: a bad value fails naming the key and what is allowed', () => {
  const dir = os.tmpdir();
  const bad = (over: Record<string, unknown>): ConfigError => {
    try {
      validateConfig(analyticsConfigSpec, { storePath: 'x', ...over });
    } catch (e) {
      if (e instanceof ConfigError) return e;
      throw e;
    }
    throw new Error(`accepted ${JSON.stringify(over)}`);
  };
  void dir;
  expect(bad({ timeZone: 'Mars/Olympus' })).toMatchObject({ key: 'timeZone', message: expect.stringMatching(/IANA/) });
  const ws = { 'WS-01': { poaPoint: 'poa', ambientPoint: '', modulePoint: '', windPoint: '' } };
  const inv = { pStcKw: 72, gammaPerK: -0.0035, weatherStation: 'WS-09', combiner: '', tracker: '' };
  expect(bad({ weatherStations: ws, inverters: { 'INV-01': inv } })).toMatchObject({ key: 'inverters.INV-01.weatherStation', message: expect.stringMatching(/"WS-01"/) });
  expect(bad({ weatherStations: ws, inverters: { 'INV-01': { ...inv, weatherStation: 'WS-01', gammaPerK: 0.4 } } })).toMatchObject({ key: 'inverters.INV-01.gammaPerK', message: expect.stringMatching(/<= 0/) });
  expect(bad({ weatherStations: ws, inverters: { 'INV-01': { ...inv, weatherStation: 'WS-01', tracker: 'TRK-9' } } })).toMatchObject({ key: 'inverters.INV-01.tracker' });
  expect(bad({ trackers: { 'TRK-01': { ...TRACKER, gcr: 1.2 } } })).toMatchObject({ key: 'trackers.TRK-01.gcr' });
  expect(bad({ ivScan: { times: ['12:00'], strings: {}, timeoutMs: 30000 } })).toMatchObject({ key: 'ivScan.strings' });
  expect(bad({ evaluateIntervalMs: 600000, windowMs: 300000 })).toMatchObject({ key: 'windowMs' });
  expect(bad({ currency: 'euro' })).toMatchObject({ key: 'currency' });
  expect(() => createAnalytics({ bus: new RecordingBus(), logger: silentLogger, metrics: createMetrics({ clock: new FakeClock() }), clock: new FakeClock(), component: 'analytics', fail: () => undefined }, validateConfig(analyticsConfigSpec, {}))).toThrow(
    expect.objectContaining({ key: 'storePath' }),
  );
});

test('live reconfiguration: a new threshold applies at once; a tracker removed from the configuration has its alarm cleared', async () => {
  rig = new Rig();
  await rig.start();
  await rig.minutes(2, 4);
  expect(rig.alarms()).toHaveLength(0);
  const prev = rig.cfg;
  rig.cfg = config(rig.dir, { alarmThresholds: { ...prev.alarmThresholds, trackerDeviationDeg: 2, trackerForMs: 0 } });
  await rig.a.reconfigure!(rig.cfg, prev);
  await rig.minutes(1, 4);
  expect(rig.alarms().map((a) => [a.type, a.state, a.threshold])).toEqual([['tracker_misalignment', 'raised', 2]]);

  const prev2 = rig.cfg;
  rig.cfg = config(rig.dir, { trackers: {} });
  await rig.a.reconfigure!(rig.cfg, prev2);
  expect(rig.alarms().map((a) => [a.type, a.state])).toEqual([['tracker_misalignment', 'raised'], ['tracker_misalignment', 'cleared']]);
  expect(rig.alarms()[1]!.message).toMatch(/no longer configured/);
});

test('close is idempotent and leaves no timer behind', async () => {
  rig = new Rig();
  const before = rig.clock.pending; // the store writer's own timers
  await rig.start();
  expect(rig.clock.pending).toBeGreaterThan(before);
  await rig.a.close();
  await rig.a.close();
  await settle();
  expect(rig.clock.pending).toBe(before);
});

describe('an inverter and its weather station', () => {
  const WS = { 'WS-01': { poaPoint: 'poa', ambientPoint: 'ambientTemp', modulePoint: 'moduleTemp', windPoint: 'windSpeed' } };
  const INV = { 'INV-01': { pStcKw: 10, gammaPerK: -0.004, weatherStation: 'WS-01', combiner: '', tracker: '' } };
  let wh = 1_000_000;

  /** 30 s of plant: POA 800 W/m², module 45 °C; the inverter at `pr` of its STC rating x POA/1000, strings sharing the DC current by `share`. */
  async function step(r: Rig, pr: number, share = [1, 1, 1, 1]): Promise<void> {
    const ts = r.clock.now();
    const w = pr * 10_000 * 0.8;
    wh += (w * 30) / 3600;
    const ws: TelemetryMessage = { schemaVersion: 1, siteId: SITE, assetId: 'WS-01', ts, seq: ++r.seq, points: { poa: { v: 800, u: 'W/m2', q: 'good' }, moduleTemp: { v: 45, u: 'Cel', q: 'good' }, ambientTemp: { v: 25, u: 'Cel', q: 'good' }, windSpeed: { v: 2, u: 'm/s', q: 'good' } } };
    // 120.WRtg as the Processor sends a static model's point between the adapter's heartbeats: interpolated.
    const points: TelemetryMessage['points'] = { '103.W': { v: w, u: 'W', q: 'good' }, '103.WH': { v: Math.round(wh), u: 'Wh', q: 'good' }, '103.St': { v: 'MPPT', q: 'good' }, '120.WRtg': { v: 10000, u: 'W', q: 'interpolated' } };
    share.forEach((s, i) => {
      points[`160.module.${i + 1}.DCA`] = { v: Math.round(s * 4 * 100) / 100, u: 'A', q: 'good' };
      points[`160.module.${i + 1}.IDStr`] = { v: `MPPT${i + 1}`, q: 'good' };
    });
    await r.bus.deliver('processedTelemetry', `site/${SITE}/processed/WS-01/telemetry`, ws, { strict: true });
    await r.bus.deliver('processedTelemetry', `site/${SITE}/processed/INV-01/telemetry`, { schemaVersion: 1, siteId: SITE, assetId: 'INV-01', ts, seq: ++r.seq, points }, { strict: true });
    await r.clock.advanceAsync(30_000);
  }
  async function steps(r: Rig, n: number, pr: number, share?: number[]): Promise<void> {
    for (let i = 0; i < n; i++) await step(r, pr, share);
  }
  const latestOf = (r: Rig, assetId: string, kind: string): AnalyticsMessage => r.bus.of<AnalyticsMessage>('analytics').filter((m) => m.assetId === assetId && m.kind === kind).at(-1)!;

  test('performance ratio per inverter and per site from live telemetry; low_pr raised after lowPrForMs and cleared above the hysteresis', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analytics-unit-'));
    rig = new Rig(dir, config(dir, { trackers: {}, weatherStations: WS, inverters: INV, alarmThresholds: { ...analyticsConfigSpec.defaults.alarmThresholds, lowPrBelow: 70, lowPrHysteresis: 5, lowPrForMs: 10 * MIN } }));
    await rig.start();
    await steps(rig, 40, 0.85); // 20 min at PR 85 %
    const pr = latestOf(rig, 'INV-01', 'performance_ratio');
    expect(pr.u).toBe('%');
    expect(pr.value).toBeCloseTo(85, 0);
    // The day from local midnight: the hours of daylight before the data began count against it.
    expect(pr.details).toMatchObject({ period: 'rolling', pStcW: 10000, day: { value: null, reason: 'coverage_below_min' } });
    expect(pr.details?.['availability']).toMatchObject({ u: '%' });
    expect(latestOf(rig, 'site', 'performance_ratio').value).toBeCloseTo(85, 0);
    // Constant module temperature: the weather-corrected PR equals the PR (T_cell = T_cell_typ_avg).
    expect(latestOf(rig, 'INV-01', 'performance_ratio_temp_corrected').value).toBeCloseTo(85, 0);

    await steps(rig, 20, 0.6); // the 15-min window fills with PR 60 % after ~15 min; then 10 min pending
    expect(rig.alarms()).toHaveLength(0);
    await steps(rig, 30, 0.6);
    const low = rig.alarms();
    expect(low.map((a) => [a.assetId, a.type, a.state, a.threshold])).toEqual([['INV-01', 'low_pr', 'raised', 70]]);
    expect(low[0]!.value).toBeCloseTo(60, 0);

    await steps(rig, 40, 0.72); // back above 70 but below 75: in the hysteresis band, kept
    expect(rig.alarms()).toHaveLength(1);
    await steps(rig, 40, 0.8);
    expect(rig.alarms().map((a) => a.state)).toEqual(['raised', 'cleared']);
  });

  test('soiling over the day with the loss and cleaning advice, soiling_loss raised when cleaning pays; a health score with every factor explained', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analytics-unit-'));
    rig = new Rig(dir, config(dir, { trackers: {}, weatherStations: WS, inverters: INV, cleaningCost: 0.5, energyPrice: 0.1, cleaningHorizonDays: 30 }));
    await rig.start();
    await steps(rig, 70, 0.85); // 35 min: soiling needs 30 min of strong light
    const f = latestOf(rig, 'INV-01', 'soiling');
    // Expected clean output: P_STC 10 kW x 800/1000 x (1 - 0.004 x (T_cell 47.4 - 25)) = 7283.2 W;
    // actual 6800 W -> 93.4 %. T_cell = module 45 + 800/1000 x 3.
    expect(f.value!).toBeCloseTo(93.4, 0);
    expect(f.details).toMatchObject({ period: 'day', currency: 'EUR', cleaning: { recommend: true, cleaningCost: 0.5, horizonDays: 30 } });
    expect(f.details?.['lossKWh'] as number).toBeGreaterThan(0);
    expect(rig.alarms().map((a) => [a.type, a.state, a.threshold])).toEqual([['soiling_loss', 'raised', 95]]);

    const h = latestOf(rig, 'INV-01', 'health_score');
    // Availability 100 % (the rolling window's: the day since midnight has too little data), no alarm but
    // our own soiling_loss (low: 1 of 20 penalty points), every sample good;
    // no peers and no temperature point: those two factors are left out and their weight shared.
    expect(h.details).toMatchObject({ missing: ['prVsPeers', 'thermal'] });
    const factors = h.details?.['factors'] as Record<string, { points: number | null; subscore: number | null }>;
    // Comms: one sample per poll (the power point's quality), not the static model's interpolated points.
    expect(factors['comms']!.subscore).toBe(1);
    expect(Object.values(factors).reduce((a, x) => a + (x.points ?? 0), 0)).toBeCloseTo(h.value!, 3);
    expect(h.value!).toBeGreaterThan(90);
    expect(h.value!).toBeLessThan(100);
  });

  test('live telemetry arriving while the day is replayed waits for its asset\'s replay: nothing refused as out of order, the day kept', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analytics-unit-'));
    rig = new Rig(dir, config(dir, { trackers: {}, weatherStations: WS, inverters: INV }));
    // 30 minutes of plant in the store (Analytics was stopped): POA 800, PR 85 %.
    let e = 2_000_000;
    for (let t = T0 - 30 * MIN; t < T0; t += 30_000) {
      e += (6800 * 30) / 3600;
      rig.store.append([
        { assetId: 'WS-01', point: 'poa', ts: t, v: 800, q: 'good', u: 'W/m2' },
        { assetId: 'WS-01', point: 'moduleTemp', ts: t, v: 45, q: 'good', u: 'Cel' },
        { assetId: 'INV-01', point: '103.W', ts: t, v: 6800, q: 'good', u: 'W' },
        { assetId: 'INV-01', point: '103.WH', ts: t, v: Math.round(e), q: 'good', u: 'Wh' },
      ]);
    }
    rig.store.flush();
    // The weather station is replayed first; while it is, the inverter's live poll arrives.
    let delivered = false;
    rig.openStore = (file) => {
      const r = openStoreReader(file);
      return {
        ...r,
        range: (key, from, to, o) => {
          if (key.assetId === 'WS-01' && !delivered) {
            delivered = true;
            void rig.bus.deliver('processedTelemetry', `site/${SITE}/processed/INV-01/telemetry`, { schemaVersion: 1, siteId: SITE, assetId: 'INV-01', ts: T0, seq: 1, points: { '103.W': { v: 6800, u: 'W', q: 'good' }, '103.WH': { v: Math.round(e + 57), u: 'Wh', q: 'good' } } });
          }
          return r.range(key, from, to, o);
        },
        close: () => r.close(),
      };
    };
    await rig.start();
    expect(delivered).toBe(true);
    expect(rig.metrics.snapshot().rejections).toEqual({});
    const pr = rig.a.evaluate().find((f) => f.assetId === 'INV-01' && f.kind === 'performance_ratio')!;
    expect(pr.value).toBeCloseTo(85, 0);
  });

  test('string imbalance names the weak string; string_underperformance raised once the detector flags it, and cleared', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analytics-unit-'));
    rig = new Rig(dir, config(dir, { trackers: {}, weatherStations: WS, inverters: INV, alarmThresholds: { ...analyticsConfigSpec.defaults.alarmThresholds, stringFraction: 0.8, stringForMs: 10 * MIN } }));
    await rig.start();
    await steps(rig, 6, 0.85);
    expect(latestOf(rig, 'INV-01', 'string_imbalance').value).toBeCloseTo(100, 0);
    await steps(rig, 20, 0.85, [1, 1, 0.5, 1]);
    expect(rig.alarms()).toHaveLength(0);
    await steps(rig, 4, 0.85, [1, 1, 0.5, 1]);
    const f = latestOf(rig, 'INV-01', 'string_imbalance');
    expect(f.value).toBeCloseTo(50, 0);
    expect(f.details).toMatchObject({ worstString: '3', flagged: ['3'] });
    expect(rig.alarms().map((a) => [a.assetId, a.type, a.state, a.point, a.details?.['subject'], a.details?.['name']])).toEqual([['INV-01', 'string_underperformance', 'raised', '160.module.3.DCA', '3', 'MPPT3']]);
    await steps(rig, 14, 0.85);
    expect(rig.alarms().map((a) => a.state)).toEqual(['raised', 'cleared']);
  });
});

test('IV scans at the configured local time: one command per string, one at a time per asset; a lost result is given up; a restart does not scan the day again', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analytics-unit-'));
  const ws = { 'WS-01': { poaPoint: 'poa', ambientPoint: '', modulePoint: '', windPoint: '' } };
  const inv = { 'INV-01': { pStcKw: 72, gammaPerK: -0.0035, weatherStation: 'WS-01', combiner: 'CB-01', tracker: '' } };
  rig = new Rig(dir, config(dir, { trackers: {}, weatherStations: ws, inverters: inv, timeZone: 'Europe/Madrid', ivScan: { times: ['12:05'], strings: { 'CB-01': [1, 2] }, timeoutMs: 5000, models: {} } }));
  await rig.start(); // 10:00 UTC = 12:00 in Madrid (CEST)
  const commands = (): Array<{ commandId: string; action: string; params: Record<string, unknown>; assetId: string; expiresAt?: number }> => rig.bus.of('controlCommand');
  await rig.clock.advanceAsync(4 * MIN);
  expect(commands()).toHaveLength(0);
  await rig.clock.advanceAsync(MIN);
  expect(commands().map((c) => [c.assetId, c.action, c.params['string']])).toEqual([['CB-01', 'iv_scan', 1]]);
  expect(commands()[0]!.expiresAt).toBe(rig.clock.now() + 5000);
  // The curve of string 1 comes back; then string 2 is asked for.
  const v = Array.from({ length: 20 }, (_, k) => k * 40);
  const i = v.map((x) => Math.max(0, 30 * (1 - Math.exp((x - 760) / 40))));
  await rig.bus.deliver('controlResult', `site/${SITE}/control/CB-01/result`, { schemaVersion: 1, siteId: SITE, assetId: 'CB-01', commandId: commands()[0]!.commandId, ts: rig.clock.now(), status: 'succeeded', data: { kind: 'iv_curve', string: 1, v, i } }, { strict: true });
  const curve = rig.figures('iv_curve');
  expect(curve).toHaveLength(1);
  expect(curve[0]).toMatchObject({ assetId: 'CB-01', u: 'W', details: { string: 1, trigger: 'scheduled', reason: 'no_string_model' } });
  expect(curve[0]!.value!).toBeGreaterThan(0);
  expect(commands().map((c) => c.params['string'])).toEqual([1, 2]);
  // No answer for string 2: given up after twice the timeout, published null with the reason.
  await rig.clock.advanceAsync(MIN);
  expect(rig.figures('iv_curve').at(-1)).toMatchObject({ value: null, details: { reason: 'no_result', string: 2 } });
  await rig.restart();
  await rig.clock.advanceAsync(10 * MIN);
  expect(commands()).toHaveLength(0);
});
