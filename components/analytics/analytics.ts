/**
 * com.dcmms.edge.Analytics (docs/analytics-component.md; dCMMS edge specification §4.1 analytics,
 * §4.2 analytics alarms, docs/specification.md): performance ratio, weather-corrected PR, string
 * imbalance, soiling, tracker deviation, IV curves and an equipment health score, per asset and per
 * site, on the gateway.
 *
 *   processed telemetry --> site model (site-model.ts: the formula accumulators, tracker monitors)
 *   Processor's store  --/         | every evaluateIntervalMs
 *   (start, late data)             v
 *                       figures -> AnalyticsMessage per (asset, kind) on the analytics topic
 *                               -> alarm conditions (alarms.ts) -> alarm journal -> alarms topic
 *                               -> latest results in analytics.db (`dcmms-edge analytics`)
 *
 * The store is read through its read-only reader: at start, the local day so far (a restart does
 * not lose the day's figures), and again for an asset whose late data a commit notice announces
 * (its accumulators are rebuilt from the store: the store, not the live stream, is the day's truth).
 *
 * The factory validates only; `start` opens Analytics's own database (alarm journal) and the
 * store, replays the day, subscribes and starts the evaluation timer; `reconfigure` rebuilds the
 * site model in place (replaying the day for it) and clears alarms of assets no longer configured;
 * `close` is idempotent.
 */
import path from 'node:path';
import { AlarmJournal } from '../lib/alarm-journal';
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { deepEqual } from '../lib/config';
import { CONTRACT_VERSION, filters, parseTopic, topics, type AlarmMessage, type AlarmSnapshot, type AnalyticsMessage, type ControlResult, type StoreCommitNotice, type TelemetryMessage } from '../lib/contract';
import { ConfigError, errorMessage } from '../lib/errors';
import { createLogLimiter } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { openStoreReader, type StoreReader } from '../lib/store';
import { AlarmConditions } from './alarms';
import type { AnalyticsConfig } from './config';
import { AnalyticsDb, type StoredResult } from './db';
import { IvScheduler } from './iv-scheduler';
import { SiteModel, type Figure, type SoilingDays } from './site-model';

export interface AnalyticsDeps {
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Short name (`analytics`): the alarms' source, the commands' issuedBy. */
  component: string;
  fail(err: unknown): void;
  /** Folder a relative `dbPath` is resolved against (main.ts: the work folder). */
  workDir?: string;
  /** better-sqlite3's addon file (main.ts: DCMMS_BETTER_SQLITE3_BINDING). */
  nativeBinding?: string;
  /** Store path when `storePath` is empty (main.ts: DCMMS_PROCESSOR_STORE from the recipe). */
  defaultStorePath?: string;
  /** Opens the store read-only (default openStoreReader); tests may wrap it. */
  openStore?: (file: string) => StoreReader;
}

export interface Analytics extends ComponentInstance<AnalyticsConfig> {
  /** Evaluate and publish now (the timer does it every evaluateIntervalMs). */
  evaluate(): Figure[];
  /** Latest figure of every (asset, kind). */
  latest(): Figure[];
  activeAlarms(): ReturnType<AlarmConditions['active']>;
  /** Ask for an IV scan of one string now (on demand); resolves when the command was sent. */
  requestIvScan(assetId: string, string: number): string;
  readonly journal: AlarmJournal | undefined;
  readonly db: AnalyticsDb | undefined;
  readonly model: SiteModel;
}

const SOILING_KEY = 'soiling.days';
const REPLAY_BUFFER_MAX = 3600;

/** Late-log entries read per commit notice (more wait for the next notice or evaluation). */
const LATE_BATCH = 500;

export function createAnalytics(deps: AnalyticsDeps, initial: Readonly<AnalyticsConfig>): Analytics {
  const log = deps.logger.child({ module: 'analytics' });
  const limited = createLogLimiter(deps.clock);
  let config = initial;
  const storeFile = (c: Readonly<AnalyticsConfig>): string => {
    const f = c.storePath || deps.defaultStorePath || '';
    if (!f) throw new ConfigError('storePath', 'storePath is empty and DCMMS_PROCESSOR_STORE is not set: Analytics does not know where the Processor store is; allowed: the path of the Processor\'s raw.db');
    return path.resolve(deps.workDir ?? '.', f);
  };
  storeFile(config); // provision: a missing store path is a ConfigError now
  let model = new SiteModel(config);
  let db: AnalyticsDb | undefined;
  let journal: AlarmJournal | undefined;
  let store: StoreReader | undefined;
  let storeId: string | undefined;
  let lateSeen = 0;
  let subs: Subscription[] = [];
  let timer: TimerHandle | undefined;
  let started = false;
  let closed = false;
  const latest = new Map<string, Figure>();
  /** Assets whose day is being replayed, and live telemetry that arrived for them meanwhile. */
  const replayPending = new Set<string>();
  const replayBuffer = new Map<string, TelemetryMessage[]>();
  let replayChain: Promise<void> = Promise.resolve();
  const openStoreFile = deps.openStore ?? ((f: string) => openStoreReader(f, deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}));

  const alarms = new AlarmConditions({
    now: () => deps.clock.now(),
    siteId: () => config.siteId,
    source: deps.component,
    emit: (t) => {
      if (!journal) throw new Error('alarm journal not open');
      const m = journal.emit(t);
      model.noteAlarm(m);
      return m;
    },
  });

  const guarded = <T>(what: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      // A defect in one step must not stop the figures of every later minute.
      deps.metrics.recordError(err);
      limited(`error:${what}`, (suppressed) => log.error(`${what} failed`, { err, suppressed }));
      return undefined;
    }
  };

  const reject = (reason: string, detail: string): void => {
    deps.metrics.reject(reason);
    limited(`reject:${reason}`, (suppressed) => log.warn('input rejected', { reason, detail, suppressed }));
  };

  const ivs = new IvScheduler({
    bus: deps.bus,
    clock: deps.clock,
    logger: log,
    metrics: deps.metrics,
    limited,
    issuedBy: deps.component,
    config: () => config,
    onCurve: (f) => publishFigures([f]),
    conditions: (assetId) => model.conditionsFor(assetId, deps.clock.now()),
  });

  // --- the store --------------------------------------------------------------------------------

  /** Opens the store if it exists yet (the Processor may start after us); true when open. */
  const ensureStore = (): boolean => {
    if (store) return true;
    const file = storeFile(config);
    try {
      store = openStoreFile(file);
    } catch (err) {
      limited('store-open', (suppressed) => log.warn('store not readable yet; figures from live telemetry only until it is', { file, err: errorMessage(err), suppressed }));
      return false;
    }
    const info = guarded('store info', () => store?.info());
    if (info && info.storeId !== storeId) {
      // Another file (or the first one): its late log starts from its own beginning.
      storeId = info.storeId;
      lateSeen = guarded('late log head', () => store?.lateLogHead()) ?? 0;
    }
    log.info('store open', { file, lateLogHead: lateSeen });
    return true;
  };

  /**
   * Feeds the site's local day so far from the store (all assets, or some), one asset per
   * event-loop turn so a long day does not hold the loop (a full day of 100 inverters at 1 Hz is
   * about a minute of replay). Live telemetry of an asset not replayed yet waits in a buffer and is
   * fed after its replay (only what is newer than the replayed samples); evaluations wait for the
   * replay. Replays run one after the other.
   */
  const replayDay = (assets?: readonly string[]): Promise<void> => {
    const run = replayChain.then(() => replayNow(assets)).catch((err: unknown) => void guarded('replay', () => { throw err; }));
    replayChain = run;
    return run;
  };

  const replayNow = async (assets?: readonly string[]): Promise<void> => {
    const m = model;
    const now = deps.clock.now();
    const from = m.replayFrom(now);
    const order = m.replayOrder(assets ?? m.assets());
    for (const a of order) replayPending.add(a);
    let samples = 0;
    let ms = 0;
    try {
      if (closed || !ensureStore()) return;
      for (const a of order) {
        // Closed, or a reconfiguration made a new model (which replays for itself): stop.
        if (closed || model !== m || !store) break;
        const r = m.replay(store, from, now, [a]);
        samples += r.samples;
        ms += r.ms;
        replayPending.delete(a);
        for (const msg of replayBuffer.get(a) ?? []) if (msg.ts > r.lastTs) feedLive(msg);
        replayBuffer.delete(a);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      for (const a of order) {
        replayPending.delete(a);
        for (const msg of replayBuffer.get(a) ?? []) feedLive(msg);
        replayBuffer.delete(a);
      }
    }
    deps.metrics.observeLatency(ms);
    log.info('history replayed from the store', { assets: assets ?? 'all', samples, ms: Math.round(ms) });
  };

  /** Late data: rebuild the assets the store's late log names (only those of the current day matter). */
  const onNotice = (n: StoreCommitNotice): Promise<void> | undefined => {
    if (n.siteId !== config.siteId) return void reject('site_mismatch', `store notice of site ${n.siteId}`);
    deps.metrics.incIn();
    if ((n.lateLogId ?? 0) <= lateSeen) return undefined;
    return readLate();
  };

  const readLate = (): Promise<void> | undefined => {
    if (replayPending.size > 0 || !ensureStore() || !store) return undefined;
    const entries = store.lateLog(lateSeen, LATE_BATCH);
    if (entries.length === 0) return undefined;
    lateSeen = entries[entries.length - 1]!.id;
    const dayStart = model.replayFrom(deps.clock.now());
    const assets = [...new Set(entries.filter((e) => e.to >= dayStart && model.isAsset(e.assetId)).map((e) => e.assetId))];
    if (assets.length === 0) return undefined;
    model.resetAssets(assets);
    return replayDay(assets);
  };

  // --- evaluation ---------------------------------------------------------------------------------

  const publishFigures = (figs: readonly Figure[]): void => {
    const rows: StoredResult[] = [];
    for (const f of figs) {
      const msg: AnalyticsMessage = {
        schemaVersion: CONTRACT_VERSION,
        siteId: config.siteId,
        assetId: f.assetId,
        kind: f.kind,
        ts: f.ts,
        value: f.value,
        ...(f.u ? { u: f.u } : {}),
        details: f.details,
      };
      deps.bus.publish(topics.analytics(config.siteId, f.assetId, f.kind), msg).catch((err: unknown) => {
        deps.metrics.drop('publish_failed');
        limited('publish', (suppressed) => log.warn('analytics result not published', { assetId: f.assetId, kind: f.kind, err: errorMessage(err), suppressed }));
      });
      latest.set(`${f.assetId}\u0000${f.kind}`, f);
      rows.push({ assetId: f.assetId, kind: f.kind, ts: f.ts, value: f.value, u: f.u ?? null, details: f.details });
    }
    if (db && rows.length > 0) guarded('results write', () => db?.putResults(rows));
  };

  const evaluate = (): Figure[] => {
    // During a replay the figures of assets not replayed yet would be of part of the day.
    if (!db || replayPending.size > 0) return [];
    const t0 = performance.now();
    // Late-log entries a lost notice did not announce.
    guarded('late log', readLate);
    const now = deps.clock.now();
    const out = model.evaluate(now);
    publishFigures(out.figures);
    for (const j of out.judgements) guarded('alarm', () => alarms.judge(j));
    guarded('soiling history', () => db?.putState(SOILING_KEY, model.soilingHistory()));
    deps.metrics.observeLatency(performance.now() - t0);
    return out.figures;
  };

  const startTimer = (): void => {
    deps.clock.clearInterval(timer);
    timer = deps.clock.setInterval(() => {
      guarded('evaluation', evaluate);
      guarded('iv schedule', () => ivs.tick());
    }, config.evaluateIntervalMs);
  };

  // --- inputs -------------------------------------------------------------------------------------

  const onTelemetry = (msg: TelemetryMessage, topic: string): void => {
    deps.metrics.incIn();
    if (msg.siteId !== config.siteId) return reject('site_mismatch', `telemetry of site ${msg.siteId}`);
    const t = parseTopic(topic);
    if (t && t.vars['assetId'] !== msg.assetId) return reject('topic_mismatch', `${msg.assetId} on ${topic}`);
    if (!model.isAsset(msg.assetId)) return;
    if (replayPending.has(msg.assetId)) {
      const buf = replayBuffer.get(msg.assetId) ?? [];
      replayBuffer.set(msg.assetId, buf);
      buf.push(msg);
      // Bounded: an hour of 1 Hz polls per asset; older messages then go (the store has them).
      if (buf.length > REPLAY_BUFFER_MAX) {
        buf.shift();
        deps.metrics.drop('replay_buffer_full');
      }
      return;
    }
    feedLive(msg);
  };

  const feedLive = (msg: TelemetryMessage): void => {
    const r = model.feed(msg.assetId, msg.ts, msg.points);
    // Samples refused by a formula (out of order, unknown unit, a counter jump) are counted by reason.
    for (const [reason, n] of Object.entries(r.refused)) {
      deps.metrics.reject(reason, n);
      limited(`reject:${reason}`, (suppressed) => log.warn('samples not used', { reason, assetId: msg.assetId, count: n, suppressed }));
    }
  };

  const subscribe = async (siteId: string): Promise<Subscription[]> => [
    await deps.bus.subscribe(filters.processedTelemetry(siteId), (m, topic) => guarded('telemetry', () => onTelemetry(m, topic))),
    await deps.bus.subscribe(filters.storeCommits(siteId), (n) => guarded('store notice', () => onNotice(n))),
    // Every source's alarms: the health score counts them per asset (our own arrive here too).
    await deps.bus.subscribe(filters.alarms(siteId), (a: AlarmMessage) => {
      if (a.siteId !== config.siteId) return reject('site_mismatch', `alarm of site ${a.siteId}`);
      if (a.source !== deps.component) guarded('alarm history', () => model.noteAlarm(a));
    }),
    await deps.bus.subscribe(filters.alarmSnapshot(siteId), (snap: AlarmSnapshot) => {
      if (snap.siteId !== config.siteId || snap.source === deps.component) return;
      guarded('alarm history', () => snap.active.forEach((a) => model.noteAlarm(a)));
    }),
    await deps.bus.subscribe(filters.controlResult(siteId), (r: ControlResult) => {
      if (r.siteId !== config.siteId) return reject('site_mismatch', `control result of site ${r.siteId}`);
      guarded('iv result', () => ivs.onResult(r));
    }),
  ];

  const openWork = async (): Promise<void> => {
    const file = path.resolve(deps.workDir ?? '.', config.dbPath);
    db = new AnalyticsDb(file, deps.nativeBinding);
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
    for (const a of journal.active()) model.noteAlarm(a);
    model.loadSoilingHistory(db.getState<SoilingDays>(SOILING_KEY));
    ivs.load(db);
    await journal.start();
    log.info('database open', { file, activeAlarms: alarms.size, alarmJournal: journal.position() });
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

  const closeStore = (): void => {
    guarded('store close', () => store?.close());
    store = undefined;
  };

  const configuredKeep = (c: Readonly<AnalyticsConfig>) => (assetId: string, type: string): boolean =>
    type === 'tracker_misalignment' ? assetId in c.trackers : assetId in c.inverters || assetId === 'site';

  return {
    evaluate: () => guarded('evaluation', evaluate) ?? [],
    latest: () => [...latest.values()],
    activeAlarms: () => alarms.active(),
    requestIvScan: (assetId, s) => ivs.request(assetId, s, 'on_demand'),
    get journal() {
      return journal;
    },
    get db() {
      return db;
    },
    get model() {
      return model;
    },

    async start() {
      if (started || closed) return;
      started = true;
      await openWork();
      // Subscribed first, so nothing live is missed while the day is replayed (it is buffered).
      for (const a of model.assets()) replayPending.add(a);
      subs = await subscribe(config.siteId);
      await replayDay();
      startTimer();
      deps.metrics.registerQueue('ivScans', () => ivs.pending);
    },

    async reconfigure(next, prev) {
      const changed = (k: keyof AnalyticsConfig): boolean => !deepEqual(next[k], prev[k]);
      config = next;
      if (changed('dbPath') || changed('siteId') || changed('alarmJournalRetentionMs') || changed('alarmSnapshotIntervalMs')) {
        await closeWork();
        await openWork();
      }
      if (changed('siteId')) {
        const old = subs;
        subs = await subscribe(next.siteId);
        await Promise.all(old.map((s) => s.close().catch(() => undefined)));
      }
      if (changed('storePath')) closeStore();
      // The plant, points, thresholds or location changed: a new model, fed the day again.
      const prevModel = model;
      model = new SiteModel(next);
      model.adopt(prevModel);
      latest.clear();
      await replayDay();
      guarded('alarm cleanup', () => alarms.clearUnless(configuredKeep(next), 'asset no longer configured in Analytics'));
      if (changed('evaluateIntervalMs')) startTimer();
    },

    async close() {
      if (closed) return;
      closed = true;
      deps.clock.clearInterval(timer);
      await Promise.all(subs.splice(0).map((s) => s.close().catch(() => undefined)));
      ivs.close();
      await closeWork();
      closeStore();
    },

    // Degraded while the store cannot be read: figures then rest on live telemetry alone.
    healthState: () => (started && !store ? 'degraded' : 'running'),
  };
}
