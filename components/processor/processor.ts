/**
 * com.dcmms.edge.Processor (issue 4 §1, §3, §4; edge-computing-spec.md §3.1 step_3, §3.2): raw
 * telemetry in, validated/converted/de-duplicated/interpolated samples into the raw store and out
 * as processed telemetry, alarms out. Bad input is rejected, counted by reason, logged (rate
 * limited), never stored, and never takes the process down.
 *
 * The factory does no I/O until `start` (CONVENTIONS.md "Lifecycle"): start opens the store,
 * restores active alarms and learned assets, subscribes, and starts the alarm tick.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { filters, parseTopic, topics, validateDeviceStatus, validateTelemetry, type AlarmMessage, type DeviceStatus, type TopicFilter } from '../lib/contract';
import { errorMessage } from '../lib/errors';
import { createLogLimiter } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { openStore, type Store } from '../lib/store';
import { AlarmEngine } from './alarms/engine';
import { sqlitePersistence, type ActiveAlarm, type AlarmPersistence } from './alarms/persist';
import { compileRules } from './alarms/rules';
import type { ProcessorConfig } from './config';
import { estimateJsonBytes } from './pipeline/size';
import { Pipeline } from './pipeline/pipeline';

export interface ProcessorDeps {
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Component short name (`processor`): the alarms' `source`. */
  component: string;
  fail(err: unknown): void;
  /** Folder a relative `storePath` is resolved against (main.ts: the work folder, its cwd). */
  workDir?: string;
  /** better-sqlite3's addon file (main.ts: DCMMS_BETTER_SQLITE3_BINDING). */
  nativeBinding?: string;
  /** Opens the store; tests may inject one. Default: openStore with the configuration's settings. */
  openStore?: (file: string) => Store;
  /** Alarm persistence; default: tables in the store's SQLite file. */
  persistence?: (store: Store) => AlarmPersistence;
  newId?: () => string;
}

export interface Processor extends ComponentInstance<ProcessorConfig> {
  /** One raw telemetry payload as it came off the bus (`unknown`), with its topic. The bus handler calls this. */
  ingest(payload: unknown, topic?: string): void;
  /** One device status payload (communication loss, asset learning). */
  ingestStatus(payload: unknown): void;
  readonly store: Store | undefined;
  activeAlarms(): ActiveAlarm[];
  knownAssets(): string[];
  /** Commits buffered samples now (tests, shutdown). */
  flush(): void;
}

/** Telemetry filter whose validation runs in `ingest`, so that size, shape and content are checked in one place with our reasons. */
function rawFilter(siteId: string): TopicFilter<unknown> {
  return { family: 'rawTelemetry', filter: filters.rawTelemetry(siteId).filter, validate: (input: unknown) => ({ ok: true, value: input }) };
}

export function createProcessor(deps: ProcessorDeps, config: Readonly<ProcessorConfig>): Processor {
  const log = deps.logger.child({ module: 'processor' });
  const limited = createLogLimiter(deps.clock);
  const ruleList = compileRules(config.alarmRules); // provision: a bad rule is a ConfigError now
  const ruleIds = new Set(ruleList.map((r) => r.id));
  let store: Store | undefined;
  let persistence: AlarmPersistence | undefined;
  let engine: AlarmEngine | undefined;
  const known = new Set(config.assets);
  const subs: Subscription[] = [];
  let tick: TimerHandle | undefined;
  let unregister: (() => void) | undefined;
  let closed = false;

  const reject = (reason: string, detail: string, assetId?: string): void => {
    deps.metrics.reject(reason);
    limited(`reject:${reason}`, (suppressed) => log.warn('telemetry rejected', { reason, detail, ...(assetId ? { assetId } : {}), suppressed }));
  };
  const pipeline = new Pipeline(config, reject);

  const publishAlarm = (a: AlarmMessage): void => {
    log.info(`alarm ${a.state}`, { alarmId: a.alarmId, type: a.type, assetId: a.assetId, point: a.point, severity: a.severity });
    deps.bus.publish(topics.alarms(config.siteId, a.assetId), a).then(
      () => deps.metrics.incOut(),
      (err: unknown) => {
        deps.metrics.recordError(err);
        log.error('alarm not published', { alarmId: a.alarmId, err: errorMessage(err) });
      },
    );
  };

  const learn = (assetId: string, source: string): void => {
    if (known.has(assetId)) return;
    known.add(assetId);
    persistence?.addAsset(assetId, source, deps.clock.now());
    log.info('asset learned', { assetId, source });
  };

  const ingest = (payload: unknown, topic?: string): void => {
    if (closed || !store || !engine) return;
    if (estimateJsonBytes(payload, config.maxMessageBytes) > config.maxMessageBytes) return reject('message_too_large', `over ${config.maxMessageBytes} bytes on ${topic ?? '?'}`);
    const v = validateTelemetry(payload);
    if (!v.ok) return reject(v.code, v.reason);
    const msg = v.value;
    if (topic !== undefined) {
      const t = parseTopic(topic);
      if (t && (t.family !== 'rawTelemetry' || t.vars['assetId'] !== msg.assetId)) return reject('topic_mismatch', `${msg.assetId} on ${topic}`, msg.assetId);
    }
    if (msg.siteId !== config.siteId) return reject('site_mismatch', `site ${msg.siteId}`, msg.assetId);
    if (!known.has(msg.assetId)) {
      if (config.unknownAssets === 'reject') return reject('unknown_asset', `${msg.assetId} is neither configured nor announced by an adapter`, msg.assetId);
      learn(msg.assetId, 'telemetry');
    }
    const now = deps.clock.now();
    const r = pipeline.process(msg, now);
    if (!r) return;
    deps.metrics.observeLatency(Math.max(0, now - msg.ts));
    if (r.samples.length) store.append(r.samples);
    for (const p of r.processed) {
      deps.bus.publish(topics.processedTelemetry(config.siteId, p.assetId), p).then(
        () => deps.metrics.incOut(),
        (err: unknown) => {
          deps.metrics.recordError(err);
          limited('publish:processed', (suppressed) => log.error('processed telemetry not published', { err: errorMessage(err), suppressed }));
        },
      );
    }
    if (r.inOrder) engine.onSamples(r.asset, msg.ts, r.updates, now);
    else deps.metrics.drop('out_of_order_not_alarmed', r.updates.length);
  };

  const ingestStatus = (payload: unknown): void => {
    if (closed || !engine) return;
    const v = validateDeviceStatus(payload);
    if (!v.ok) return reject(v.code, v.reason);
    const st: DeviceStatus = v.value;
    if (st.siteId !== config.siteId) return reject('site_mismatch', `device status of site ${st.siteId}`, st.assetId);
    // Issue 4 §4: the adapters' device status names the site's assets (docs/processor.md).
    learn(st.assetId, 'device_status');
    engine.onDeviceStatus(st, deps.clock.now());
  };

  const guarded = (fn: () => void, what: string): void => {
    try {
      fn();
    } catch (err) {
      // A defect here must not stop the pipeline for every later message.
      deps.metrics.recordError(err);
      limited(`error:${what}`, (suppressed) => log.error(`${what} failed`, { err, suppressed }));
    }
  };

  return {
    ingest: (p, t) => guarded(() => ingest(p, t), 'telemetry'),
    ingestStatus: (p) => guarded(() => ingestStatus(p), 'device status'),
    get store() {
      return store;
    },
    activeAlarms: () => engine?.active() ?? [],
    knownAssets: () => [...known],
    flush: () => void store?.flush(),

    async start() {
      const file = path.resolve(deps.workDir ?? '.', config.storePath);
      store =
        deps.openStore?.(file) ??
        openStore(
          { path: file, clock: deps.clock, logger: deps.logger, ...(deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}) },
          { commitWindowMs: config.commitWindowMs, retentionMs: config.retentionMs, maxBytes: config.maxStoreBytes, minFreeBytes: config.minFreeBytes, synchronous: config.storeSynchronous },
        );
      persistence = deps.persistence?.(store) ?? sqlitePersistence(store.db);
      for (const a of persistence.loadAssets()) known.add(a);
      engine = new AlarmEngine(ruleList, { siteId: config.siteId, persistence, emit: publishAlarm, newId: deps.newId ?? randomUUID, source: deps.component });
      engine.reconcile(deps.clock.now(), ruleIds);
      const s = store;
      unregister = deps.metrics.registerQueue('store', () => s.pending);
      log.info('store open', { file, activeAlarms: engine.active().length, knownAssets: known.size });
      subs.push(await deps.bus.subscribe(filters.deviceStatus(config.siteId), (st) => ingestStatus(st)));
      subs.push(await deps.bus.subscribe(rawFilter(config.siteId), (p, topic) => ingest(p, topic)));
      const e = engine;
      tick = deps.clock.setInterval(() => guarded(() => e.tick(deps.clock.now()), 'alarm tick'), config.alarmTickMs);
    },

    async close() {
      if (closed) return;
      closed = true;
      deps.clock.clearInterval(tick);
      await Promise.all(subs.splice(0).map((s) => s.close().catch(() => undefined)));
      unregister?.();
      try {
        store?.close();
      } catch (err) {
        log.error('store close failed', { err });
      }
    },

    healthState: () => {
      const c = store?.counters();
      return c && ((c.rejected['disk_full'] ?? 0) > 0 || (c.rejected['store_unavailable'] ?? 0) > 0) ? 'degraded' : 'running';
    },
  };
}
