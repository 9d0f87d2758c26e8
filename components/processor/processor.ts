/**
 * com.dcmms.edge.Processor (docs/processor.md; dCMMS edge specification §3.1 step 3, §3.2): raw
 * telemetry in, validated/converted/de-duplicated/interpolated samples into the raw store and out
 * as processed telemetry, alarms out. Bad input is rejected, counted by reason, logged (rate
 * limited), never stored, and never takes the process down.
 *
 * The Processor is the store's only writer: after each commit it publishes a commit notice, so
 * readers learn of new and late data without scanning the store. Alarm transitions go through the
 * alarm journal (components/lib/alarm-journal.ts), in the store file, in one transaction with the
 * engine's state, so a consumer that missed one can get it again.
 *
 * The factory does no I/O until `start` (lifecycle: provision -> connect -> run -> close): start
 * opens the store, restores active alarms and learned assets, subscribes, and starts the alarm tick.
 * Configuration changes apply in place (`reconfigure`), without dropping the subscriptions.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { deepEqual } from '../lib/config';
import { filters, parseTopic, topics, validateDeviceStatus, validateTelemetry, type DeviceStatus, type TopicFilter } from '../lib/contract';
import { AlarmJournal } from '../lib/alarm-journal';
import { errorMessage } from '../lib/errors';
import { createLogLimiter } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { openStore, type CommitInfo, type Store } from '../lib/store';
import { AlarmEngine } from './alarms/engine';
import { sqlitePersistence, type ActiveAlarm, type AlarmPersistence } from './alarms/persist';
import { compileRules } from './alarms/rules';
import { CommitNotices } from './commit-notices';
import type { ProcessorConfig } from './config';
import { estimateJsonBytes } from './pipeline/size';
import { Pipeline } from './pipeline/pipeline';
import { Quarantine } from './quarantine';

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
  readonly journal: AlarmJournal | undefined;
  activeAlarms(): ActiveAlarm[];
  knownAssets(): string[];
  /** Messages held for assets not announced yet. */
  quarantined(): number;
  /** Commits buffered samples now (tests, shutdown). */
  flush(): void;
}

/** Telemetry filter whose validation runs in `ingest`, so that size, shape and content are checked in one place with our reasons. */
function rawFilter(siteId: string): TopicFilter<unknown> {
  return { family: 'rawTelemetry', filter: filters.rawTelemetry(siteId).filter, validate: (input: unknown) => ({ ok: true, value: input }) };
}

/** Keys that need the store (and what lives in its file) reopened. */
const STORE_KEYS: ReadonlyArray<keyof ProcessorConfig> = ['storePath', 'commitWindowMs', 'retentionMs', 'maxStoreBytes', 'minFreeBytes', 'storeSynchronous', 'alarmJournalRetentionMs', 'alarmSnapshotIntervalMs'];
const PIPELINE_KEYS: ReadonlyArray<keyof ProcessorConfig> = ['unknownPoints', 'maxPointsPerAsset', 'maxFutureMs', 'maxPastMs', 'maxClockSkewMs', 'maxInterpolationGapMs', 'ranges', 'unitConversions'];

export function createProcessor(deps: ProcessorDeps, initial: Readonly<ProcessorConfig>): Processor {
  const log = deps.logger.child({ module: 'processor' });
  const limited = createLogLimiter(deps.clock);
  let config = initial;
  let ruleList = compileRules(config.alarmRules); // provision: a bad rule is a ConfigError now
  let store: Store | undefined;
  let persistence: AlarmPersistence | undefined;
  let journal: AlarmJournal | undefined;
  let engine: AlarmEngine | undefined;
  const known = new Set(config.assets);
  let subs: Subscription[] = [];
  let tick: TimerHandle | undefined;
  const unregister: Array<() => void> = [];
  let unhookCommit: (() => void) | undefined;
  let closed = false;
  let notices = new CommitNotices();
  const quarantineOptions = (c: Readonly<ProcessorConfig>) => ({ holdMs: c.quarantineMs, maxMessages: c.quarantineMaxMessages, maxBytes: c.quarantineMaxBytes });
  const quarantine = new Quarantine(quarantineOptions(config));

  const reject = (reason: string, detail: string, assetId?: string): void => {
    deps.metrics.reject(reason);
    limited(`reject:${reason}`, (suppressed) => log.warn('telemetry rejected', { reason, detail, ...(assetId ? { assetId } : {}), suppressed }));
  };
  const pipeline = new Pipeline(config, reject);

  const makeEngine = (): AlarmEngine => {
    const j = journal as AlarmJournal;
    const p = persistence as AlarmPersistence;
    const e = new AlarmEngine(ruleList, {
      siteId: config.siteId,
      persistence: p,
      newId: deps.newId ?? randomUUID,
      source: deps.component,
      transition: (alarm, change) => {
        log.info(`alarm ${alarm.transition ?? alarm.state}`, { alarmId: alarm.alarmId, type: alarm.type, assetId: alarm.assetId, point: alarm.point, severity: alarm.severity });
        j.emit(alarm, () => {
          if (change.save) p.save(change.save);
          if (change.remove !== undefined) p.remove(change.remove);
        });
      },
    });
    e.reconcile(deps.clock.now(), new Set(ruleList.map((r) => r.id)));
    return e;
  };

  const learn = (assetId: string, source: string): void => {
    if (known.has(assetId)) return;
    known.add(assetId);
    persistence?.addAsset(assetId, source, deps.clock.now());
    log.info('asset learned', { assetId, source });
    const held = quarantine.release(assetId);
    if (held.length > 0) {
      log.info('quarantined telemetry released', { assetId, messages: held.length });
      for (const h of held) guarded(() => ingest(h.payload, h.topic), 'telemetry');
    }
  };

  const expireQuarantine = (now: number): void => {
    for (const { assetId, held } of quarantine.expire(now)) {
      deps.metrics.reject('unknown_asset', held.length);
      limited('reject:unknown_asset', (suppressed) =>
        log.warn('telemetry rejected', { reason: 'unknown_asset', detail: `${assetId} was neither configured nor announced within ${config.quarantineMs} ms; ${held.length} held messages dropped`, assetId, suppressed }),
      );
    }
  };

  const ingest = (payload: unknown, topic?: string): void => {
    if (closed || !store || !engine) return;
    const bytes = estimateJsonBytes(payload, config.maxMessageBytes);
    if (bytes > config.maxMessageBytes) return reject('message_too_large', `over ${config.maxMessageBytes} bytes on ${topic ?? '?'}`);
    const v = validateTelemetry(payload);
    if (!v.ok) return reject(v.code, v.reason);
    const msg = v.value;
    if (topic !== undefined) {
      const t = parseTopic(topic);
      if (t && (t.family !== 'rawTelemetry' || t.vars['assetId'] !== msg.assetId)) return reject('topic_mismatch', `${msg.assetId} on ${topic}`, msg.assetId);
    }
    if (msg.siteId !== config.siteId) return reject('site_mismatch', `site ${msg.siteId}`, msg.assetId);
    const now = deps.clock.now();
    if (!known.has(msg.assetId)) {
      if (config.unknownAssets === 'accept') learn(msg.assetId, 'telemetry');
      else {
        if (quarantine.hold(msg.assetId, payload, topic, bytes, now)) {
          deps.metrics.incIn();
          return;
        }
        return reject('unknown_asset', `${msg.assetId} is neither configured nor announced by an adapter (quarantine ${quarantine.size} messages, ${quarantine.heldBytes} bytes)`, msg.assetId);
      }
    }
    const r = pipeline.process(msg, now);
    if (!r) return;
    deps.metrics.observeLatency(Math.max(0, now - msg.ts));
    if (r.samples.length) {
      const res = store.tryAppend(r.samples);
      // Refused samples (disk full, store unavailable) are counted where Health sees them.
      for (const [reason, n] of Object.entries(res.reasons)) deps.metrics.reject(`store_${reason}`, n);
      if (res.accepted > 0) notices.appended(res.ticket, r.samples);
    }
    for (const p of r.processed) {
      // messagesOut is counted by the bus, once per message actually sent.
      deps.bus.publish(topics.processedTelemetry(config.siteId, p.assetId), p).catch(
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
    // The adapters' device status names the site's assets (docs/processor.md); it repeats on a heartbeat.
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

  const publishNotice = (c: CommitInfo): void => {
    // The late log's newest id rides on every notice: a reader that lost one catches up on the next.
    const n = notices.committed(c.ticket, deps.clock.now(), config.siteId, c.lateLogId > 0 ? c.lateLogId : undefined);
    if (!n) return;
    deps.bus.publish(topics.storeCommits(config.siteId), n).catch((err: unknown) => {
      deps.metrics.recordError(err);
      limited('publish:commits', (suppressed) => log.warn('store commit notice not published', { err: errorMessage(err), suppressed }));
    });
  };

  /** Opens the store and everything kept in its file (synchronous: no message can arrive in between). */
  const openWork = (): void => {
    const file = path.resolve(deps.workDir ?? '.', config.storePath);
    store =
      deps.openStore?.(file) ??
      openStore(
        { path: file, clock: deps.clock, logger: deps.logger, ...(deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}) },
        { commitWindowMs: config.commitWindowMs, retentionMs: config.retentionMs, maxBytes: config.maxStoreBytes, minFreeBytes: config.minFreeBytes, synchronous: config.storeSynchronous },
      );
    persistence = deps.persistence?.(store) ?? sqlitePersistence(store.db);
    const stored = new Set(persistence.loadAssets());
    for (const a of stored) known.add(a);
    for (const a of config.assets) if (!stored.has(a)) persistence.addAsset(a, 'configuration', deps.clock.now());
    journal = new AlarmJournal({
      db: store.db,
      bus: deps.bus,
      clock: deps.clock,
      logger: deps.logger,
      metrics: deps.metrics,
      siteId: config.siteId,
      source: deps.component,
      retentionMs: config.alarmJournalRetentionMs,
      snapshotIntervalMs: config.alarmSnapshotIntervalMs,
    });
    notices = new CommitNotices();
    unhookCommit = store.onCommit((c) => publishNotice(c));
    engine = makeEngine();
    const s = store;
    unregister.push(deps.metrics.registerQueue('store', () => s.pending));
    log.info('store open', { file, activeAlarms: engine.active().length, knownAssets: known.size, alarmJournal: journal.position() });
  };

  const closeWork = async (): Promise<void> => {
    unhookCommit?.();
    unhookCommit = undefined;
    for (const u of unregister.splice(0)) u();
    await journal?.close();
    try {
      const last = store?.flush();
      if (last) publishNotice(last);
      store?.close();
    } catch (err) {
      log.error('store close failed', { err });
    }
    store = undefined;
    engine = undefined;
  };

  const subscribe = async (siteId: string): Promise<Subscription[]> => [
    await deps.bus.subscribe(filters.deviceStatus(siteId), (st) => ingestStatus(st)),
    await deps.bus.subscribe(rawFilter(siteId), (p, topic) => ingest(p, topic)),
  ];

  const startTick = (): void => {
    deps.clock.clearInterval(tick);
    tick = deps.clock.setInterval(
      () =>
        guarded(() => {
          const now = deps.clock.now();
          engine?.tick(now);
          expireQuarantine(now);
        }, 'alarm tick'),
      config.alarmTickMs,
    );
  };

  return {
    ingest: (p, t) => guarded(() => ingest(p, t), 'telemetry'),
    ingestStatus: (p) => guarded(() => ingestStatus(p), 'device status'),
    get store() {
      return store;
    },
    get journal() {
      return journal;
    },
    activeAlarms: () => engine?.active() ?? [],
    knownAssets: () => [...known],
    quarantined: () => quarantine.size,
    flush: () => void store?.flush(),

    async start() {
      openWork();
      await journal?.start();
      subs = await subscribe(config.siteId);
      unregister.push(deps.metrics.registerQueue('quarantine', () => quarantine.size));
      startTick();
    },

    async reconfigure(next, prev) {
      const changed = (k: keyof ProcessorConfig): boolean => !deepEqual(next[k], prev[k]);
      ruleList = compileRules(next.alarmRules);
      config = next;
      for (const a of next.assets) known.add(a);
      quarantine.setOptions(quarantineOptions(next));
      if (PIPELINE_KEYS.some(changed) || changed('siteId')) pipeline.reconfigure(next);
      if (STORE_KEYS.some(changed) || changed('siteId')) {
        // Reopened in one synchronous step: subscriptions stay, so no message is lost meanwhile.
        await closeWork();
        openWork();
        await journal?.start();
      } else if (changed('alarmRules')) {
        pipeline.resetAlarmBindings();
        engine = makeEngine();
      }
      for (const a of next.assets) if (!prev.assets.includes(a)) persistence?.addAsset(a, 'configuration', deps.clock.now());
      if (changed('siteId')) {
        const old = subs;
        subs = await subscribe(next.siteId);
        await Promise.all(old.map((s) => s.close().catch(() => undefined)));
      }
      if (changed('alarmTickMs')) startTick();
      // Assets configured now may have telemetry waiting.
      for (const a of next.assets) {
        if (!quarantine.has(a)) continue;
        for (const h of quarantine.release(a)) guarded(() => ingest(h.payload, h.topic), 'telemetry');
      }
    },

    async close() {
      if (closed) return;
      deps.clock.clearInterval(tick);
      await Promise.all(subs.splice(0).map((s) => s.close().catch(() => undefined)));
      const left = quarantine.drain().reduce((n, x) => n + x.held.length, 0);
      if (left > 0) {
        deps.metrics.reject('unknown_asset', left);
        log.warn('closing with quarantined telemetry of unannounced assets', { messages: left });
      }
      closed = true;
      await closeWork();
    },

    healthState: () => {
      const c = store?.counters();
      // Degraded while commits fail (samples wait in memory) or once samples had to be refused.
      return c && ((store?.failingCommits ?? 0) > 0 || (c.rejected['disk_full'] ?? 0) > 0 || (c.rejected['store_unavailable'] ?? 0) > 0) ? 'degraded' : 'running';
    },
  };
}
