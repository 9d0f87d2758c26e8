/**
 * com.dcmms.edge.MLInference (docs/ml-inference.md; dCMMS edge specification §6, docs/specification.md):
 * the fault classifier, the anomaly detector and the 4-hour generation forecast on the gateway,
 * with onnxruntime on the CPU.
 *
 *   processed telemetry --> one-minute samples (window.ts) --> features (scripts/training/features.ts)
 *   Processor's store  --/    (start: 4 h back; late data)       | every fault/anomaly/forecast intervalMs
 *                                                               v
 *             models in service (models.ts) --> MlResult per (asset, model) on the ml topic
 *                                           --> predicted_fault / anomaly (alarms.ts) -> alarm journal
 *   models folder (the models component) --> validate, switch, keep a copy (models.ts)
 *
 * The factory validates only; `start` opens the database (alarm journal, trial inputs), loads the
 * kept models then the folder's, backfills the samples from the store, subscribes and starts the
 * timers; `reconfigure` applies a change in place; `close` is idempotent.
 */
import path from 'node:path';
import { AlarmJournal } from '../lib/alarm-journal';
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { deepEqual } from '../lib/config';
import { CONTRACT_VERSION, filters, parseTopic, topics, type MlModel, type MlResult, type StoreCommitNotice, type TelemetryMessage } from '../lib/contract';
import { ConfigError, errorMessage } from '../lib/errors';
import { createLogLimiter } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { openStoreReader, type StoreReader } from '../lib/store';
import { MlAlarms, type MlAlarmType } from './alarms';
import type { MlInferenceConfig } from './config';
import { MlDb } from './db';
import { ANOMALY_FEATURES, DAYLIGHT_ELEVATION, FAULT_FEATURES, clearSkyMinutes, forecastFeatures, windowFeatures, type InverterWindow } from './features';
import { ModelSet, type LoadedModel, type ModelRejected } from './models';
import { BUILTIN_SAMPLES } from './samples';
import { FORECAST_STEP_MS, HISTORY_MIN, MINUTE_MS, MinuteSamples, SITE_KEY, forecastMinutes, inverterWindow, siteWindow, sunElevations, type Unscored } from './window';

export interface MlInferenceDeps {
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Short name (`ml-inference`): the alarms' source. */
  component: string;
  fail(err: unknown): void;
  /** Folder relative paths (dbPath, the kept models) are resolved against (main.ts: the work folder). */
  workDir?: string;
  nativeBinding?: string;
  /** Store path when `storePath` is empty (main.ts: DCMMS_PROCESSOR_STORE). */
  defaultStorePath?: string;
  /** Models folder when `modelDir` is empty (main.ts: DCMMS_MODELS_DIR, the models component's artifacts). */
  defaultModelDir?: string;
  openStore?: (file: string) => StoreReader;
}

export interface EvaluationReport {
  kind: MlModel;
  results: MlResult[];
  unscored: Partial<Record<Unscored | 'no_model', number>>;
}

export interface MlInference extends ComponentInstance<MlInferenceConfig> {
  /** Runs one model over every asset now (the timers do it every intervalMs). */
  evaluate(kind: MlModel): Promise<EvaluationReport>;
  /** Looks at the models folder now (the timer does it every modelCheckIntervalMs). */
  checkModels(): Promise<void>;
  readonly models: ModelSet;
  readonly samples: MinuteSamples;
  activeAlarms(): ReturnType<MlAlarms['active']>;
  readonly journal: AlarmJournal | undefined;
}

/** A minute counts as complete this long after it ended (the last poll of it is on its way). */
const MINUTE_LAG_MS = 2000;
/** The forecast's asset: the whole site. */
export const SITE_ASSET = 'site';

type Kind = 'num' | 'st' | 'evt';
interface Route {
  point: string;
  asset: string;
  series: string;
  kind: Kind;
}

/** Which processed points feed which series (an inverter's, or the site's). */
function routesFor(c: Readonly<MlInferenceConfig>): Map<string, Route[]> {
  const out = new Map<string, Route[]>();
  const add = (assetId: string, r: Route): void => {
    const list = out.get(assetId) ?? [];
    list.push(r);
    out.set(assetId, list);
  };
  const p = c.inverterPoints;
  for (const id of Object.keys(c.inverters)) {
    for (const s of ['W', 'DCW', 'DCV', 'TmpSnk', 'TmpCab'] as const) add(id, { point: p[s], asset: id, series: s, kind: 'num' });
    add(id, { point: p.St, asset: id, series: 'stFault', kind: 'st' });
    add(id, { point: p.Evt1, asset: id, series: 'evt', kind: 'evt' });
    add(id, { point: p.moduleTmp.replace('{n}', '1'), asset: id, series: 'Tmp', kind: 'num' });
    for (let n = 1; n <= c.modules; n++) add(id, { point: p.moduleDCA.replace('{n}', String(n)), asset: id, series: `str${n}DCA`, kind: 'num' });
  }
  const s = c.site;
  if (s.weatherStation) {
    const ws: Array<[string, string]> = [[s.ghiPoint, 'ghi'], [s.poaPoint, 'poa'], [s.ambientPoint, 'ambientTemp'], [s.modulePoint, 'wsModuleTemp'], [s.windPoint, 'windSpeed']];
    for (const [point, series] of ws) add(s.weatherStation, { point, asset: SITE_KEY, series, kind: 'num' });
  }
  if (s.tracker) {
    add(s.tracker, { point: s.trackerActualPoint, asset: SITE_KEY, series: 'trackerActual', kind: 'num' });
    add(s.tracker, { point: s.trackerTargetPoint, asset: SITE_KEY, series: 'trackerTarget', kind: 'num' });
  }
  return out;
}

export function createMlInference(deps: MlInferenceDeps, initial: Readonly<MlInferenceConfig>): MlInference {
  const log = deps.logger.child({ module: 'ml-inference' });
  const limited = createLogLimiter(deps.clock);
  let config = initial;
  const workDir = deps.workDir ?? '.';
  const storeFile = (c: Readonly<MlInferenceConfig>): string => {
    const f = c.storePath || deps.defaultStorePath || '';
    if (!f) throw new ConfigError('storePath', "storePath is empty and DCMMS_PROCESSOR_STORE is not set: MLInference does not know where the Processor store is; allowed: the path of the Processor's raw.db");
    return path.resolve(workDir, f);
  };
  const modelDir = (c: Readonly<MlInferenceConfig>): string => {
    const d = c.modelDir || deps.defaultModelDir || '';
    if (!d) throw new ConfigError('modelDir', 'modelDir is empty and DCMMS_MODELS_DIR is not set: MLInference does not know where the models are; allowed: the folder holding fault.onnx, anomaly.onnx and forecast.onnx (the recipe passes the models component\'s artifact folder)');
    return path.resolve(workDir, d);
  };
  storeFile(config);
  modelDir(config);
  let routes = routesFor(config);
  const samples = new MinuteSamples();
  let db: MlDb | undefined;
  let journal: AlarmJournal | undefined;
  let store: StoreReader | undefined;
  let lateSeen = 0;
  let storeId: string | undefined;
  let subs: Subscription[] = [];
  const timers = new Map<string, TimerHandle>();
  let started = false;
  let closed = false;
  const openStoreFile = deps.openStore ?? ((f: string) => openStoreReader(f, deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}));

  const reject = (reason: string, detail: string, n = 1): void => {
    deps.metrics.reject(reason, n);
    limited(`reject:${reason}`, (suppressed) => log.warn('input rejected', { reason, detail, suppressed }));
  };
  const guarded = async <T>(what: string, fn: () => T | Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      deps.metrics.recordError(err);
      limited(`error:${what}`, (suppressed) => log.error(`${what} failed`, { err, suppressed }));
      return undefined;
    }
  };

  const models = new ModelSet({
    dir: () => modelDir(config),
    keepDir: path.resolve(workDir, 'models'),
    sample: (kind) => db?.sample(kind) ?? BUILTIN_SAMPLES[kind],
    now: () => deps.clock.now(),
    onLoaded: (m: LoadedModel, prev: LoadedModel | undefined, from) => {
      deps.metrics.observeLatency(m.loadMs);
      log.info('model in service', { model: m.kind, modelVersion: m.version, file: m.file, sha256: m.sha256, from, loadMs: Math.round(m.loadMs * 10) / 10, previousVersion: prev ? prev.version : null });
    },
    onRejected: (e: ModelRejected) => {
      deps.metrics.reject(`model_${e.reason}`);
      deps.metrics.recordError(e);
      const cur = models.get(e.kind);
      log.error('model rejected; the previous model stays in service', { model: e.kind, file: e.file, reason: e.reason, error: e.message, versionInService: cur ? cur.version : null });
    },
  });

  const alarms = new MlAlarms({
    now: () => deps.clock.now(),
    siteId: () => config.siteId,
    source: deps.component,
    emit: (t) => {
      if (!journal) throw new Error('alarm journal not open');
      return journal.emit(t);
    },
  });

  // --- samples ----------------------------------------------------------------------------------

  const feed = (r: Route, ts: number, v: unknown): void => {
    if (r.kind === 'num') {
      if (typeof v === 'number' && Number.isFinite(v)) samples.put(r.asset, r.series, ts, v);
    } else if (r.kind === 'st') {
      if (typeof v === 'string') samples.put(r.asset, r.series, ts, v === 'FAULT' ? 1 : 0);
    } else if (typeof v === 'string') {
      const bits = v.split('|');
      samples.put(r.asset, 'evtOverTemp', ts, bits.includes('OVER_TEMP') ? 1 : 0);
      samples.put(r.asset, 'evtGroundFault', ts, bits.includes('GROUND_FAULT') ? 1 : 0);
    }
  };

  const onTelemetry = (msg: TelemetryMessage, topic: string): void => {
    deps.metrics.incIn();
    if (msg.siteId !== config.siteId) return reject('site_mismatch', `telemetry of site ${msg.siteId}`);
    const t = parseTopic(topic);
    if (t && t.vars['assetId'] !== msg.assetId) return reject('topic_mismatch', `${msg.assetId} on ${topic}`);
    const rs = routes.get(msg.assetId);
    if (!rs) return;
    if (!Number.isFinite(msg.ts)) return reject('bad_timestamp', `${msg.assetId} ts ${String(msg.ts)}`);
    for (const r of rs) {
      const p = msg.points[r.point];
      if (!p || p.q === 'bad' || p.q === 'not_implemented') continue;
      feed(r, msg.ts, p.v);
    }
  };

  const ensureStore = (): boolean => {
    if (store) return true;
    const file = storeFile(config);
    try {
      store = openStoreFile(file);
    } catch (err) {
      limited('store-open', (suppressed) => log.warn('store not readable yet; windows from live telemetry only until it is', { file, err: errorMessage(err), suppressed }));
      return false;
    }
    try {
      const info = store.info();
      if (info.storeId !== storeId) {
        storeId = info.storeId;
        lateSeen = store.lateLogHead();
      }
    } catch (err) {
      limited('store-info', (suppressed) => log.warn('store info unreadable', { err: errorMessage(err), suppressed }));
    }
    return true;
  };

  /** Numeric points of some assets over [from, to] from the store (the string points are not stored). */
  const backfill = (from: number, to: number, assets?: ReadonlySet<string>): number => {
    if (!ensureStore() || !store) return 0;
    let n = 0;
    for (const [assetId, rs] of routes) {
      if (assets && !assets.has(assetId)) continue;
      for (const r of rs) {
        if (r.kind !== 'num') continue;
        for (const s of store.range({ assetId, point: r.point }, from, to)) {
          if (s.v === null || s.q === 'bad' || s.q === 'not_implemented') continue;
          samples.put(r.asset, r.series, s.ts, s.v);
          n++;
        }
      }
    }
    return n;
  };

  const historyFrom = (now: number): number => (Math.floor(now / MINUTE_MS) - HISTORY_MIN + 1) * MINUTE_MS;

  const onNotice = (n: StoreCommitNotice): void => {
    if (n.siteId !== config.siteId) return reject('site_mismatch', `store notice of site ${n.siteId}`);
    deps.metrics.incIn();
    if ((n.lateLogId ?? 0) <= lateSeen) return;
    if (!ensureStore() || !store) return;
    const entries = store.lateLog(lateSeen, 500);
    if (entries.length === 0) return;
    lateSeen = entries[entries.length - 1]!.id;
    const from = historyFrom(deps.clock.now());
    for (const e of entries) {
      if (e.to < from || !routes.has(e.assetId)) continue;
      backfill(Math.max(e.from, from), e.to, new Set([e.assetId]));
    }
  };

  // --- inference --------------------------------------------------------------------------------

  const publish = (r: MlResult): void => {
    deps.bus.publish(topics.mlResult(config.siteId, r.assetId, r.model), r).then(
      () => deps.metrics.incOut(),
      (err: unknown) => {
        deps.metrics.drop('publish_failed');
        limited('publish', (suppressed) => log.warn('ml result not published', { assetId: r.assetId, model: r.model, err: errorMessage(err), suppressed }));
      },
    );
  };

  const evaluateWindows = async (kind: 'fault' | 'anomaly'): Promise<EvaluationReport> => {
    const report: EvaluationReport = { kind, results: [], unscored: {} };
    const count = (why: Unscored | 'no_model', n = 1): void => {
      report.unscored[why] = (report.unscored[why] ?? 0) + n;
    };
    const ids = Object.keys(config.inverters);
    if (ids.length === 0) return report;
    if (!models.get(kind)) {
      count('no_model', ids.length);
      return report;
    }
    const now = deps.clock.now();
    const last = Math.floor((now - MINUTE_LAG_MS) / MINUTE_MS) - 1;
    const first = last - 14;
    const endMs = (last + 1) * MINUTE_MS;
    const plant = { latitude: config.latitude, longitude: config.longitude, inverters: ids, modules: config.modules, hasTracker: config.site.tracker !== '' };
    const sun = sunElevations(first, 15, config.latitude, config.longitude);
    const site = siteWindow(samples, plant, first, sun);
    if (typeof site === 'string') {
      count(sun.reduce((a, b) => a + b, 0) / sun.length < DAYLIGHT_ELEVATION ? 'night' : site, ids.length);
      return report;
    }
    const wins: InverterWindow[] = [];
    const usable: boolean[] = [];
    for (const id of ids) {
      const w = inverterWindow(samples, id, config.modules, first);
      if (typeof w === 'string') {
        count(w);
        // Its power still counts among the peers' (the features' peer median takes W only).
        wins.push({ W: samples.range(id, 'W', first, 15) });
        usable.push(false);
      } else {
        wins.push(w);
        usable.push(true);
      }
    }
    const names = kind === 'fault' ? FAULT_FEATURES : ANOMALY_FEATURES;
    const rows: number[][] = [];
    const assets: string[] = [];
    ids.forEach((id, i) => {
      if (!usable[i]) return;
      const f = windowFeatures(site, wins, i, config.inverters[id]!.ratedW);
      if (!f) {
        count(sun.reduce((a, b) => a + b, 0) / sun.length < DAYLIGHT_ELEVATION ? 'night' : 'too_few_samples');
        return;
      }
      rows.push(names.map((n) => f[n]));
      assets.push(id);
    });
    if (rows.length === 0) return report;
    const data = new Float32Array(rows.length * names.length);
    rows.forEach((r, k) => data.set(r, k * names.length));
    const t0 = performance.now();
    const out = await models.run(kind, data, rows.length);
    const ms = performance.now() - t0;
    if (!out) {
      count('no_model', rows.length);
      return report;
    }
    deps.metrics.observeLatency(ms);
    const h = config[kind];
    const type: MlAlarmType = kind === 'fault' ? 'predicted_fault' : 'anomaly';
    out.outputs.forEach((o, k) => {
      const assetId = assets[k]!;
      const score = Math.min(kind === 'fault' ? 1 : 1, Math.max(kind === 'fault' ? 0 : -1, o.score ?? NaN));
      if (!Number.isFinite(score)) return reject('model_output', `${kind} score of ${assetId} is not finite`);
      const r: MlResult = { schemaVersion: CONTRACT_VERSION, siteId: config.siteId, assetId, model: kind, modelVersion: out.model.version, ts: endMs, score, inferenceMs: Math.round((ms / rows.length) * 1000) / 1000 };
      report.results.push(r);
      publish(r);
      const details: Record<string, unknown> = { modelVersion: out.model.version, windowEnd: endMs };
      if (o.label !== undefined) details['label'] = o.label;
      if (o.probabilities) details['probabilities'] = Object.fromEntries(out.model.classes.map((c, j) => [c, Math.round(o.probabilities![j]! * 1e4) / 1e4]));
      try {
        alarms.judge(assetId, type, score, h, details);
      } catch (err) {
        deps.metrics.recordError(err);
        limited('alarm', (suppressed) => log.error('alarm transition failed', { err, suppressed }));
      }
    });
    db?.putSample(kind, endMs, rows[0]!);
    return report;
  };

  const evaluateForecast = async (): Promise<EvaluationReport> => {
    const report: EvaluationReport = { kind: 'forecast', results: [], unscored: {} };
    const ids = Object.keys(config.inverters);
    if (ids.length === 0) return report;
    if (!models.get('forecast')) {
      report.unscored.no_model = 1;
      return report;
    }
    const now = deps.clock.now();
    const originMs = Math.floor((now - MINUTE_LAG_MS) / FORECAST_STEP_MS) * FORECAST_STEP_MS;
    const fm = forecastMinutes(samples, ids, originMs);
    if (typeof fm === 'string') {
      report.unscored[fm] = 1;
      return report;
    }
    const capacityW = ids.reduce((a, id) => a + config.inverters[id]!.ratedW, 0);
    const g = { latitude: config.latitude, longitude: config.longitude, trackerLimitDeg: config.trackerLimitDeg };
    const f = forecastFeatures(fm, originMs, capacityW, g, clearSkyMinutes(originMs, g));
    const t0 = performance.now();
    const out = await models.run('forecast', Float32Array.from(f), 1);
    const ms = performance.now() - t0;
    if (!out) {
      report.unscored.no_model = 1;
      return report;
    }
    deps.metrics.observeLatency(ms);
    const fc = out.outputs[0]?.forecast ?? [];
    if (fc.some((v) => !Number.isFinite(v))) {
      reject('model_output', 'forecast has a non-finite value');
      return report;
    }
    const r: MlResult = {
      schemaVersion: CONTRACT_VERSION,
      siteId: config.siteId,
      assetId: SITE_ASSET,
      model: 'forecast',
      modelVersion: out.model.version,
      ts: originMs,
      // Fractions of capacity -> W; generation is never negative.
      forecast: { stepMs: out.model.stepMinutes * MINUTE_MS, values: fc.map((v) => Math.round(Math.max(0, v) * capacityW)), u: 'W' },
      inferenceMs: Math.round(ms * 1000) / 1000,
    };
    report.results.push(r);
    publish(r);
    db?.putSample('forecast', originMs, f);
    return report;
  };

  const evaluate = async (kind: MlModel): Promise<EvaluationReport> => {
    const r = kind === 'forecast' ? await evaluateForecast() : await evaluateWindows(kind);
    for (const [why, n] of Object.entries(r.unscored)) if (why !== 'night') deps.metrics.drop(`${kind}_${why}`, n);
    return r;
  };

  // --- lifecycle ----------------------------------------------------------------------------------

  const startTimers = (): void => {
    for (const t of timers.values()) deps.clock.clearInterval(t);
    timers.clear();
    for (const kind of ['fault', 'anomaly', 'forecast'] as const) {
      if (!config[kind].enabled) continue;
      timers.set(kind, deps.clock.setInterval(() => void guarded(`${kind} inference`, () => evaluate(kind)), config[kind].intervalMs));
    }
    timers.set('models', deps.clock.setInterval(() => void guarded('model check', () => models.check()), config.modelCheckIntervalMs));
  };

  const subscribe = async (siteId: string): Promise<Subscription[]> => [
    await deps.bus.subscribe(filters.processedTelemetry(siteId), (m, topic) => {
      try {
        onTelemetry(m, topic);
      } catch (err) {
        deps.metrics.recordError(err);
        limited('telemetry', (suppressed) => log.error('telemetry failed', { err, suppressed }));
      }
    }),
    await deps.bus.subscribe(filters.storeCommits(siteId), (n) => void guarded('store notice', () => onNotice(n))),
  ];

  const openWork = async (): Promise<void> => {
    const file = path.resolve(workDir, config.dbPath);
    db = new MlDb(file, deps.nativeBinding);
    journal = new AlarmJournal({
      db: db.db,
      bus: deps.bus,
      clock: deps.clock,
      logger: deps.logger,
      metrics: deps.metrics,
      siteId: config.siteId,
      source: deps.component,
      retentionMs: config.alarmJournalRetentionMs,
      snapshotIntervalMs: config.alarmSnapshotIntervalMs,
    });
    alarms.load(journal.active());
    await journal.start();
    log.info('database open', { file, activeAlarms: alarms.active().length, alarmJournal: journal.position() });
  };

  const closeWork = async (): Promise<void> => {
    await journal?.close();
    journal = undefined;
    try {
      db?.close();
    } catch (err) {
      log.error('database close failed', { err });
    }
    db = undefined;
  };

  const keep = (c: Readonly<MlInferenceConfig>) => (assetId: string, type: MlAlarmType): boolean =>
    assetId in c.inverters && (type === 'predicted_fault' ? c.fault.enabled : c.anomaly.enabled);

  return {
    evaluate,
    checkModels: () => models.check(),
    models,
    samples,
    activeAlarms: () => alarms.active(),
    get journal() {
      return journal;
    },

    async start() {
      if (started || closed) return;
      started = true;
      await openWork();
      await models.loadKept();
      await guarded('model check', () => models.check());
      const now = deps.clock.now();
      const n = await guarded('backfill', () => backfill(historyFrom(now), now));
      log.info('history read from the store', { samples: n ?? 0, minutes: HISTORY_MIN });
      subs = await subscribe(config.siteId);
      startTimers();
      deps.metrics.registerQueue('series', () => samples.seriesCount);
      // Scores from the stored history at once, not one interval after a restart (a window with too
      // few minutes is left unscored, as at any evaluation).
      if ((n ?? 0) > 0) {
        for (const kind of ['fault', 'anomaly', 'forecast'] as const) if (config[kind].enabled) await guarded(`${kind} inference`, () => evaluate(kind));
      }
    },

    async reconfigure(next, prev) {
      const changed = (k: keyof MlInferenceConfig): boolean => !deepEqual(next[k], prev[k]);
      config = next;
      routes = routesFor(next);
      for (const id of Object.keys(prev.inverters)) if (!(id in next.inverters)) samples.dropAsset(id);
      if (changed('dbPath') || changed('siteId') || changed('alarmJournalRetentionMs') || changed('alarmSnapshotIntervalMs')) {
        await closeWork();
        await openWork();
      }
      if (changed('siteId')) {
        const old = subs;
        subs = await subscribe(next.siteId);
        await Promise.all(old.map((s) => s.close().catch(() => undefined)));
      }
      if (changed('storePath')) {
        await guarded('store close', () => store?.close());
        store = undefined;
      }
      if (changed('inverters') || changed('inverterPoints') || changed('site') || changed('modules') || changed('storePath')) {
        const now = deps.clock.now();
        await guarded('backfill', () => backfill(historyFrom(now), now));
      }
      if (changed('modelDir')) {
        models.resetSeen();
        await guarded('model check', () => models.check());
      }
      try {
        alarms.clearUnless(keep(next), 'inverter or model no longer configured in MLInference');
      } catch (err) {
        deps.metrics.recordError(err);
        log.error('alarm cleanup failed', { err });
      }
      startTimers();
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers.values()) deps.clock.clearInterval(t);
      timers.clear();
      await Promise.all(subs.splice(0).map((s) => s.close().catch(() => undefined)));
      await models.close();
      await closeWork();
      try {
        store?.close();
      } catch {
        // closing a read-only reader cannot lose anything
      }
      store = undefined;
    },

    // Each model in service by kind, with its metadata version: the HMI's health page shows them.
    healthModels: () =>
      (['fault', 'anomaly', 'forecast'] as const).flatMap((k) => {
        const m = models.get(k);
        return m ? [{ name: k, version: m.version }] : [];
      }),

    // Degraded while a model file was rejected, an enabled model has none in service, or the store is unreadable.
    healthState: () => {
      if (!started) return 'running';
      const missing = (['fault', 'anomaly', 'forecast'] as const).some((k) => config[k].enabled && !models.get(k));
      return models.issues().length > 0 || missing || !store ? 'degraded' : 'running';
    },
  };
}
