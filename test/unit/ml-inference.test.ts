/** @jest-environment ./test/helpers/ml-inference-environment.js */
/**
 * The MLInference component (docs/ml-inference.md) with the FakeClock, the RecordingBus, a real
 * store file and tiny ONNX models: windows from the store's history at start and from live
 * telemetry, MlResult per inverter and model (valid against the contract), the site forecast in W,
 * predicted_fault and anomaly raised after forCount inferences and cleared past the clear threshold
 * through the alarm journal, a new model version switched in while running and a broken one refused
 * with the previous serving (health degraded), configuration refusals naming the key, live
 * reconfiguration (an inverter removed: its alarms cleared), an idempotent close.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { validateConfig } from '../../components/lib/config';
import { ConfigError } from '../../components/lib/errors';
import type { AlarmMessage, MlResult, TelemetryMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { openStore, type Store } from '../../components/lib/store';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { ML_INFERENCE_DEFAULTS, mlInferenceConfigSpec, type MlInferenceConfig } from '../../components/ml-inference/config';
import { createMlInference, type MlInference } from '../../components/ml-inference/ml-inference';
import { tinySpec, writeTinyModel, writeTinyModels } from '../helpers/ml-tiny-models';

const SITE = 'unit-site';
const MIN = 60_000;
/** 2026-06-21 08:00 UTC at 37 N, 2.5 W: the sun is up. */
const T0 = Date.UTC(2026, 5, 21, 8, 0, 0);
const DAY = 86_400_000;

function config(dir: string, over: Partial<MlInferenceConfig> = {}): Readonly<MlInferenceConfig> {
  return validateConfig(mlInferenceConfigSpec, {
    siteId: SITE,
    storePath: path.join(dir, 'raw.db'),
    modelDir: path.join(dir, 'models'),
    dbPath: path.join(dir, 'ml.db'),
    inverters: { 'INV-01': { ratedW: 60000 }, 'INV-02': { ratedW: 60000 } },
    site: { ...ML_INFERENCE_DEFAULTS.site, weatherStation: 'WS-01', tracker: 'TRK-01' },
    // The test calls evaluate() itself: the timers never fire within it.
    fault: { ...ML_INFERENCE_DEFAULTS.fault, intervalMs: DAY },
    anomaly: { ...ML_INFERENCE_DEFAULTS.anomaly, intervalMs: DAY },
    forecast: { enabled: true, intervalMs: DAY },
    modelCheckIntervalMs: DAY,
    ...over,
  });
}

/** Points of one minute: a healthy inverter at 30 kW, or one whose state is FAULT. */
function inverterPoints(fault: boolean): Record<string, number | string> {
  const p: Record<string, number | string> = { '103.W': 30000, '103.DCW': 31000, '103.DCV': 600, '103.TmpSnk': 45, '103.TmpCab': 35, '103.St': fault ? 'FAULT' : 'MPPT', '103.Evt1': '', '160.module.1.Tmp': 40 };
  for (let n = 1; n <= 4; n++) p[`160.module.${n}.DCA`] = 12;
  return p;
}
const SITE_POINTS = { ghi: 700, poa: 800, ambientTemp: 25, moduleTemp: 40, windSpeed: 3 };
const TRACKER_POINTS = { actualAngle: -30, targetAngle: -30 };

class Rig {
  readonly clock = new FakeClock(T0);
  bus = new RecordingBus();
  metrics = createMetrics({ clock: this.clock });
  ml!: MlInference;
  seq = 0;
  store: Store;

  constructor(
    readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ml-unit-')),
    public cfg: Readonly<MlInferenceConfig> = config(dir),
  ) {
    writeTinyModels(path.join(dir, 'models'), '1.0.0');
    this.store = openStore({ path: path.join(dir, 'raw.db'), clock: this.clock });
  }

  async start(): Promise<void> {
    this.ml = createMlInference({ bus: this.bus, logger: silentLogger, metrics: this.metrics, clock: this.clock, component: 'ml-inference', fail: () => undefined, workDir: this.dir }, this.cfg);
    await this.ml.start();
  }

  msg(assetId: string, ts: number, points: Record<string, number | string>): TelemetryMessage {
    return { schemaVersion: 1, siteId: SITE, assetId, ts, seq: ++this.seq, points: Object.fromEntries(Object.entries(points).map(([k, v]) => [k, { v, q: 'good' as const }])) };
  }

  /** One minute of telemetry (INV-02 in FAULT when `fault`), then the clock moves on a minute. */
  async minute(fault: boolean): Promise<void> {
    const ts = this.clock.now() + 30_000;
    for (const m of [this.msg('WS-01', ts, SITE_POINTS), this.msg('TRK-01', ts, TRACKER_POINTS), this.msg('INV-01', ts, inverterPoints(false)), this.msg('INV-02', ts, inverterPoints(fault))]) {
      await this.bus.deliver('processedTelemetry', `site/${SITE}/processed/${m.assetId}/telemetry`, m, { strict: true });
    }
    await this.clock.advanceAsync(MIN);
  }

  results(model: string, assetId?: string): MlResult[] {
    return this.bus.of<MlResult>('mlResult', assetId).filter((r) => r.model === model);
  }

  alarms(): AlarmMessage[] {
    return this.bus.of<AlarmMessage>('alarms');
  }
}

describe('MLInference', () => {
  test('history from the store at start: a window can be scored at once', async () => {
    const r = new Rig();
    // 20 minutes before the start, written as the Processor writes them (numbers only).
    const rows = [];
    for (let k = 20; k >= 1; k--) {
      const ts = T0 - k * MIN + 30_000;
      for (const [assetId, pts] of [['WS-01', SITE_POINTS], ['TRK-01', TRACKER_POINTS], ['INV-01', inverterPoints(false)], ['INV-02', inverterPoints(false)]] as const) {
        for (const [point, v] of Object.entries(pts)) if (typeof v === 'number') rows.push({ assetId, point, ts, v, q: 'good' as const });
      }
    }
    r.store.append(rows);
    r.store.flush();
    await r.start();
    // Scored at start from the history, before any timer fired (not one interval after a restart).
    expect(r.results('fault').map((x) => x.assetId)).toEqual(['INV-01', 'INV-02']);
    expect(r.results('anomaly').map((x) => x.assetId)).toEqual(['INV-01', 'INV-02']);
    const rep = await r.ml.evaluate('fault');
    expect(rep.results.map((x) => x.assetId)).toEqual(['INV-01', 'INV-02']);
    expect(rep.results[0]!.score).toBeLessThan(0.01);
    expect(r.bus.invalid).toEqual([]);
    expect(r.ml.healthState?.()).toBe('running');
    await r.ml.close();
    r.store.close();
    expect(r.clock.pending).toBe(0);
  });

  test('results, alarms with hysteresis through the journal, forecast in W, a model switched and a broken one refused', async () => {
    const r = new Rig();
    await r.start();
    // Nothing to score yet: no data.
    expect((await r.ml.evaluate('fault')).results).toEqual([]);

    // 4 h of healthy plant: the forecast has its history.
    for (let k = 0; k < 241; k++) await r.minute(false);
    const fc = await r.ml.evaluate('forecast');
    expect(fc.results).toHaveLength(1);
    expect(fc.results[0]).toMatchObject({ assetId: 'site', model: 'forecast', modelVersion: '1.0.0', forecast: { stepMs: 15 * MIN, u: 'W', values: new Array(16).fill(30000) } });

    // INV-02 reports FAULT: its fault probability goes to about 1, its anomaly score to -0.3.
    for (let k = 0; k < 15; k++) await r.minute(true);
    for (let i = 0; i < 2; i++) {
      await r.ml.evaluate('fault');
      await r.ml.evaluate('anomaly');
      expect(r.alarms()).toEqual([]); // forCount 3: not yet
    }
    await r.ml.evaluate('fault');
    await r.ml.evaluate('anomaly');
    const raised = r.alarms();
    expect(raised.map((a) => [a.assetId, a.type, a.state])).toEqual([
      ['INV-02', 'predicted_fault', 'raised'],
      ['INV-02', 'anomaly', 'raised'],
    ]);
    expect(raised[0]).toMatchObject({ source: 'ml-inference', severity: 'medium', details: { label: 'string_fault' } });
    expect(raised[0]!.sourceSeq).toBe(1);
    expect(r.results('fault', 'INV-01').at(-1)!.score).toBeLessThan(0.01);
    expect(r.results('fault', 'INV-02').at(-1)!.score).toBeGreaterThan(0.99);

    // A new fault model version is switched in while running.
    writeTinyModel(path.join(r.dir, 'models', 'fault.onnx'), tinySpec('fault', '1.1.0'));
    await r.ml.checkModels();
    await r.ml.evaluate('fault');
    expect(r.results('fault', 'INV-01').at(-1)!.modelVersion).toBe('1.1.0');
    // The health report names each model in service with its version (the HMI's health page).
    expect(r.ml.healthModels?.().find((m) => m.name === 'fault')).toEqual({ name: 'fault', version: '1.1.0' });
    expect(r.ml.healthModels?.().map((m) => m.name)).toContain('anomaly');

    // A truncated one is refused: 1.1.0 serves on, the component is degraded, the refusal counted.
    const bytes = fs.readFileSync(path.join(r.dir, 'models', 'fault.onnx'));
    fs.writeFileSync(path.join(r.dir, 'models', 'fault.onnx'), bytes.subarray(0, bytes.length - 10));
    await r.ml.checkModels();
    expect(r.ml.healthState?.()).toBe('degraded');
    expect(r.metrics.snapshot().rejections).toMatchObject({ model_corrupt: 1 });
    await r.ml.evaluate('fault');
    expect(r.results('fault', 'INV-01').at(-1)!.modelVersion).toBe('1.1.0');

    // Healthy again: 15 minutes later the window is clean and both alarms clear at once (past clear).
    for (let k = 0; k < 15; k++) await r.minute(false);
    await r.ml.evaluate('fault');
    await r.ml.evaluate('anomaly');
    expect(r.alarms().map((a) => [a.type, a.state])).toEqual([
      ['predicted_fault', 'raised'],
      ['anomaly', 'raised'],
      ['predicted_fault', 'cleared'],
      ['anomaly', 'cleared'],
    ]);
    expect(r.ml.activeAlarms()).toEqual([]);
    expect(r.bus.invalid).toEqual([]);
    await r.ml.close();
    r.store.close();
  });

  test('a restart keeps the raised alarm (no second raise); removing the inverter clears it', async () => {
    const r = new Rig();
    await r.start();
    for (let k = 0; k < 16; k++) await r.minute(true);
    for (let i = 0; i < 3; i++) await r.ml.evaluate('fault');
    expect(r.alarms().map((a) => a.state)).toEqual(['raised']);
    await r.ml.close();
    r.bus = new RecordingBus();
    await r.start();
    for (let k = 0; k < 16; k++) await r.minute(true);
    for (let i = 0; i < 3; i++) await r.ml.evaluate('fault');
    expect(r.alarms()).toEqual([]);
    expect(r.ml.activeAlarms()).toHaveLength(1);
    const next = config(r.dir, { inverters: { 'INV-01': { ratedW: 60000 } } });
    await r.ml.reconfigure!(next, r.cfg);
    expect(r.alarms().map((a) => [a.assetId, a.type, a.state])).toEqual([['INV-02', 'predicted_fault', 'cleared']]);
    const rep = await r.ml.evaluate('fault');
    expect(rep.results.map((x) => x.assetId)).toEqual(['INV-01']);
    await r.ml.close();
    r.store.close();
  });
});

describe('MLInference configuration', () => {
  const base = { siteId: SITE, storePath: '/tmp/x.db', modelDir: '/tmp/models' };
  test('hysteresis the wrong way round, inverters without a weather station: ConfigError naming the key', () => {
    const refuse = (over: Record<string, unknown>, key: string): void => {
      try {
        validateConfig(mlInferenceConfigSpec, { ...base, ...over });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).message).toContain(key);
        return;
      }
      throw new Error(`accepted ${JSON.stringify(over)}`);
    };
    refuse({ fault: { ...ML_INFERENCE_DEFAULTS.fault, clear: 0.9 } }, 'fault.clear');
    refuse({ anomaly: { ...ML_INFERENCE_DEFAULTS.anomaly, clear: -0.5 } }, 'anomaly.clear');
    refuse({ inverters: { 'INV-01': { ratedW: 1000 } } }, 'site.weatherStation');
    refuse({ inverterPoints: { ...ML_INFERENCE_DEFAULTS.inverterPoints, moduleDCA: '160.DCA' } }, 'moduleDCA');
    refuse({ fault: { ...ML_INFERENCE_DEFAULTS.fault, intervalMs: 1000 } }, 'intervalMs');
  });

  test('no models folder and no DCMMS_MODELS_DIR: ConfigError at creation', () => {
    const cfg = validateConfig(mlInferenceConfigSpec, { ...base, modelDir: '' });
    const clock = new FakeClock(T0);
    expect(() => createMlInference({ bus: new RecordingBus(), logger: silentLogger, metrics: createMetrics({ clock }), clock, component: 'ml-inference', fail: () => undefined }, cfg)).toThrow(/modelDir/);
  });

  test('the recipe\'s DefaultConfiguration is the defaults object', () => {
    const recipe = YAML.parse(fs.readFileSync(path.join(__dirname, '../../recipes/com.dcmms.edge.MLInference.yaml'), 'utf8').replaceAll('{COMPONENT_VERSION}', '0.0.0')) as { ComponentConfiguration: { DefaultConfiguration: unknown } };
    expect(recipe.ComponentConfiguration.DefaultConfiguration).toEqual(ML_INFERENCE_DEFAULTS);
  });
});
