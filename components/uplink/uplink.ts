/**
 * com.dcmms.edge.Uplink (docs/uplink.md; dCMMS edge specification §3.1 step 5, cloud sync, and §7,
 * offline operation; docs/specification.md):
 * every record the cloud must get is persisted in the outbox when it arrives, sealed into gzip
 * batches per priority class, and sent by one sender per exporter (IoT Core, S3), which removes a
 * batch only once its exporter confirmed it. Alarm transitions are taken in once each (the outbox
 * de-duplicates on alarmId and transitionSeq) and whatever the Uplink missed is asked for again
 * from the sources' journals (alarm-sync.ts). See README.md for the policies.
 *
 * Lifecycle: the factory only validates; `start` opens the outbox, builds the exporters, subscribes
 * and starts the timers; `reconfigure` applies a new configuration in place (new subscriptions
 * before old ones close, senders rebuilt only for exporters whose settings changed, the outbox kept
 * open); `close` is idempotent.
 */
import path from 'node:path';
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { deepEqual } from '../lib/config';
import { CONTRACT_VERSION, filters, iotTopics, type AggregateMessage, type AlarmMessage, type AlarmSnapshot, type DeviceStatus, type MlResult, type UplinkStatus } from '../lib/contract';
import { errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { AlarmSync, alarmKey } from './alarm-sync';
import { CLASSES, classOf, type RecordClass } from './classes';
import { checkUplinkConfig, EXPORTER_NAMES, exporterEnabled, exporterSettings, smDestination, type ExporterName, type UplinkConfig } from './config';
import { createIotCoreExporter } from './exporters/iotcore';
import { createS3Exporter, type TesEndpoint } from './exporters/s3';
import { createStreamManagerExporter, StreamManagerHub, type SmStatusReport } from './exporters/stream-manager';
import { SM_DEFAULT_PORT } from './exporters/stream-manager-client';
import type { Exporter } from './exporters/types';
import { Outbox, type AppendItem, type BatchMeta } from './outbox';
import { TokenBucket } from './pacing';
import { Sender } from './sender';

export interface UplinkDeps {
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  fail(err: unknown): void;
  workDir?: string;
  nativeBinding?: string;
  /** The gateway's AWS region (the nucleus's AWS_REGION), used when `s3.region` is empty. */
  awsRegion?: string;
  /** The gateway's thing name (the nucleus's AWS_IOT_THING_NAME): S3 keys live under it. */
  thingName?: string;
  /** The nucleus's Token Exchange Service (the only source of S3 credentials). */
  tes?: TesEndpoint;
  /** STREAM_MANAGER_SERVER_PORT as the nucleus gives it, if set (used when `streamManager.port` is 0). */
  streamManagerPortEnv?: string;
  /** The component's token for Stream Manager (AWS_CONTAINER_AUTHORIZATION_TOKEN). */
  streamManagerToken?: string;
  /** Replace an exporter (tests, benchmarks); default: built from the configuration. */
  exporters?: Partial<Record<ExporterName, Exporter>>;
  random?: () => number;
  onDelivered?: (exporter: ExporterName, b: BatchMeta, latencyMs: number) => void;
}

export interface Uplink extends ComponentInstance<UplinkConfig> {
  /** One message as it came off the bus. */
  ingest(cls: RecordClass, payload: unknown, dedupeKey?: string): void;
  /** One alarm transition (live, replayed, or from a snapshot). */
  ingestAlarm(a: AlarmMessage): void;
  /** Persist what is buffered and seal what is due now (tests). */
  flush(force?: boolean): void;
  status(): UplinkStatus;
  readonly outbox: Outbox | undefined;
  readonly alarmSync: AlarmSync;
}

const SEAL_TICK_MS = 250;
const EXPIRE_TICK_MS = 60000;
/** Alarm identities are remembered this long (beyond any source journal's retention, 7 days by default). */
const SEEN_RETENTION_MS = 8 * 86_400_000;

/** A subscription of the Uplink: which family (and interval) it takes in. */
type SubKey = 'alarms' | 'alarmSnapshot' | 'controlResult' | 'controlDecision' | 'analytics' | 'mlResult' | 'deviceStatus' | 'aggregates/1m' | 'aggregates/15m' | 'aggregates/1d' | 'dailySummary' | 'healthSummary';

export function createUplink(deps: UplinkDeps, initial: Readonly<UplinkConfig>): Uplink {
  const log = deps.logger.child({ module: 'uplink' });
  checkUplinkConfig(initial);
  let config = initial;
  const enabledNow = (): ExporterName[] => EXPORTER_NAMES.filter((n) => exporterEnabled(config, n));
  const routeIdx = (cls: RecordClass): number[] => config.routes[cls].filter((e) => exporterEnabled(config, e)).map((e) => EXPORTER_NAMES.indexOf(e));
  const unroutedNow = (): Set<RecordClass> => new Set(CLASSES.filter((c) => routeIdx(c).length === 0));

  let outbox: Outbox | undefined;
  const senders = new Map<ExporterName, Sender>();
  const exporters = new Map<ExporterName, Exporter>();
  const subs = new Map<SubKey, Subscription>();
  const timers: TimerHandle[] = [];
  const unregister = new Map<string, () => void>();
  let pending: AppendItem[] = [];
  let flushScheduled = false;
  let urgent = false;
  let closed = false;
  let unrouted = unroutedNow();
  /** The Stream Manager connection the streammanager-* exporters share (while any of them runs). */
  let hub: StreamManagerHub | undefined;

  const alarmSync = new AlarmSync({ bus: deps.bus, clock: deps.clock, logger: log, metrics: deps.metrics, siteId: config.siteId, requester: 'uplink' });

  const status = (): UplinkStatus & { streamManager?: SmStatusReport } => ({
    schemaVersion: CONTRACT_VERSION,
    siteId: config.siteId,
    ts: deps.clock.now(),
    exporters: Object.fromEntries(EXPORTER_NAMES.map((n) => [n, senders.get(n)?.status() ?? { state: 'disabled', lastSuccessAt: null, consecutiveFailures: 0, nextAttemptAt: null, lastError: null, backlogBatches: 0 }])),
    outboxBytes: outbox?.bytes ?? 0,
    maxOutboxBytes: config.maxOutboxBytes,
    backlog: outbox?.backlog() ?? {},
    dropped: outbox?.droppedCounts() ?? {},
    compressionRatio: outbox?.compressionRatio() ?? null,
    // Stream Manager's own export status (DescribeMessageStream): what it still has to export, and errors.
    ...(hub ? { streamManager: hub.report() } : {}),
  });

  const seal = (force = false): void => {
    if (!outbox) return;
    const sealed = outbox.seal({ now: deps.clock.now(), delayMs: config.batchDelayMs, maxRecords: config.maxBatchRecords, maxBytes: config.maxBatchBytes, gzipLevel: config.gzipLevel, force }, routeIdx);
    if (sealed.length === 0) return;
    const hasAlarm = sealed.some((b) => b.cls === 'alarms');
    for (const s of senders.values()) s.kick(hasAlarm);
  };

  const flush = (force = false): void => {
    flushScheduled = false;
    if (!outbox) return;
    const positions = alarmSync.takeDirty();
    if (pending.length > 0 || positions.length > 0) {
      const items = pending;
      pending = [];
      try {
        const r = outbox.append(items, positions);
        if (r.duplicates > 0) deps.metrics.reject('duplicate_alarm', r.duplicates);
        if (r.dropped > 0) {
          deps.metrics.drop('overflow', r.dropped);
          log.warn('outbox full: records dropped by the overflow policy', { dropped: r.dropped, bytes: outbox.bytes, maxBytes: config.maxOutboxBytes });
        }
      } catch (err) {
        // The transaction rolled back (a full disk): these records are lost, and counted; the alarm
        // positions go back to what the outbox holds, so the lost alarms are asked for again.
        deps.metrics.recordError(err);
        deps.metrics.drop('outbox_write_failed', items.length);
        log.error('outbox write failed; records dropped, alarms will be asked for again', { records: items.length, err: errorMessage(err) });
        alarmSync.load(outbox.sourcePositions());
        alarmSync.request('outbox_write_failed');
      }
    }
    if (urgent || force) seal(force);
    urgent = false;
  };

  const ingest = (cls: RecordClass, payload: unknown, dedupeKey?: string): void => {
    if (closed) return;
    deps.metrics.incIn();
    if (unrouted.has(cls)) return; // not subscribed; only a message already in flight gets here
    pending.push({ cls, receivedAt: deps.clock.now(), body: JSON.stringify(payload), ...(dedupeKey !== undefined ? { dedupeKey } : {}) });
    if (config.batchDelayMs[cls] === 0) urgent = true;
    // Group commit: everything that arrived in this event-loop turn goes in one transaction.
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(() => flush());
    }
  };

  const ingestAlarm = (a: AlarmMessage): void => {
    if (closed) return;
    alarmSync.observe(a);
    // The copy the cloud gets is the transition itself, whichever way it reached us.
    const { replayed: _replayed, ...record } = a;
    ingest('alarms', record, alarmKey(a));
  };

  const siteGuard = <P extends { siteId: string }>(fn: (p: P) => void) => (p: P): void => {
    if (p.siteId !== config.siteId) {
      deps.metrics.reject('site_mismatch');
      return;
    }
    fn(p);
  };

  /** What the Uplink subscribes to under a configuration: a class routed nowhere is not. */
  const wanted = (): Map<SubKey, () => Promise<Subscription>> => {
    const site = config.siteId;
    const out = new Map<SubKey, () => Promise<Subscription>>();
    const routed = (c: RecordClass): boolean => !unrouted.has(c);
    if (routed('alarms')) {
      out.set('alarms', () => deps.bus.subscribe(filters.alarms(site), siteGuard((a: AlarmMessage) => ingestAlarm(a))));
      out.set('alarmSnapshot', () =>
        deps.bus.subscribe(filters.alarmSnapshot(site), siteGuard((s: AlarmSnapshot) => {
          deps.metrics.incIn();
          alarmSync.onSnapshot(s);
          for (const a of s.active) ingestAlarm(a);
        })),
      );
    }
    if (routed('events')) {
      out.set('controlResult', () => deps.bus.subscribe(filters.controlResult(site), siteGuard((p) => ingest(classOf('controlResult') as RecordClass, p))));
      // LocalControl's audit: every decision step goes to the cloud with the events.
      out.set('controlDecision', () => deps.bus.subscribe(filters.controlDecision(site), siteGuard((p) => ingest(classOf('controlDecision') as RecordClass, p))));
      out.set('analytics', () => deps.bus.subscribe(filters.analytics(site), siteGuard((p) => ingest(classOf('analytics') as RecordClass, p))));
      out.set('mlResult', () =>
        deps.bus.subscribe(filters.mlResult(site), siteGuard((r: MlResult) => {
          if (r.model !== 'forecast') return void deps.metrics.incIn();
          ingest(classOf('mlResult') as RecordClass, r);
        })),
      );
      out.set('deviceStatus', () =>
        deps.bus.subscribe(filters.deviceStatus(site), siteGuard((p: DeviceStatus) => {
          // A heartbeat repeats an unchanged status: the cloud gets changes only.
          if (p.heartbeat === true) return void deps.metrics.incIn();
          ingest(classOf('deviceStatus') as RecordClass, p);
        })),
      );
    }
    // One subscription per forwarded interval, so rollups nobody forwards are never delivered here.
    for (const interval of ['1m', '15m', '1d'] as const) {
      if (routed(interval)) out.set(`aggregates/${interval}`, () => deps.bus.subscribe(filters.aggregates(site, interval), siteGuard((p: AggregateMessage) => ingest(classOf('aggregates', p.interval) as RecordClass, p))));
    }
    if (routed('1d')) out.set('dailySummary', () => deps.bus.subscribe(filters.dailySummary(site), siteGuard((p) => ingest(classOf('dailySummary') as RecordClass, p))));
    if (routed('health')) out.set('healthSummary', () => deps.bus.subscribe(filters.healthSummary(site), siteGuard((p) => ingest(classOf('healthSummary') as RecordClass, p))));
    return out;
  };

  /** New subscriptions first, then the ones no longer wanted close: nothing is missed in between. */
  const syncSubscriptions = async (resubscribeAll: boolean): Promise<void> => {
    const want = wanted();
    const old: Subscription[] = [];
    if (resubscribeAll) for (const [k, s] of subs) (old.push(s), subs.delete(k));
    for (const [k, open] of want) if (!subs.has(k)) subs.set(k, await open());
    for (const [k, s] of subs) if (!want.has(k)) (old.push(s), subs.delete(k));
    await Promise.all(old.map((s) => s.close().catch(() => undefined)));
  };

  const publishStatus = (): void => {
    const iot = senders.get('iotcore');
    // The status publish is also the IoT Core probe; while that exporter is offline, its own probes run.
    if (!iot || !iot.isOnline) return;
    deps.bus.publishToIoTCore(iotTopics.uplinkStatus(config.siteId), status(), 0).catch((err: unknown) => {
      log.debug('uplink status not published', { err: errorMessage(err) });
    });
  };

  /** Stream Manager's port: configured, else STREAM_MANAGER_SERVER_PORT, else its `port` over IPC, else 8088 (Greengrass developer guide, "Stream manager"). */
  const smPort = async (): Promise<number> => {
    const configured = config.exporters.streamManager.port;
    if (configured > 0) return configured;
    const env = Number(deps.streamManagerPortEnv);
    if (Number.isInteger(env) && env > 0 && env < 65536) return env;
    try {
      const v = await deps.bus.getConfiguration(['port'], 'aws.greengrass.StreamManager');
      const p = Number(typeof v === 'object' && v !== null ? (v as Record<string, unknown>)['port'] : v);
      if (Number.isInteger(p) && p > 0 && p < 65536) return p;
    } catch (err) {
      log.debug('Stream Manager port not read over IPC', { err: errorMessage(err) });
    }
    return SM_DEFAULT_PORT;
  };

  const smHub = (ob: Outbox): StreamManagerHub => {
    hub ??= new StreamManagerHub({
      config: config.exporters.streamManager,
      routes: config.routes,
      maxOutboxBytes: config.maxOutboxBytes,
      maxAgeMs: config.maxAgeMs,
      siteId: config.siteId,
      thingName: deps.thingName ?? '',
      outboxId: ob.id,
      fileDir: path.resolve(deps.workDir ?? '.', 'streammanager-s3'),
      clock: deps.clock,
      logger: log,
      metrics: deps.metrics,
      resolvePort: smPort,
      authToken: deps.streamManagerToken,
      backoffInitialMs: config.backoffInitialMs,
      backoffMaxMs: config.backoffMaxMs,
      statusIntervalMs: config.statusIntervalMs,
      ...(deps.random ? { random: deps.random } : {}),
    });
    return hub;
  };

  const buildExporter = (name: ExporterName, ob: Outbox): Exporter => {
    const given = deps.exporters?.[name];
    if (given) return given;
    const dest = smDestination(name);
    if (dest !== undefined) return createStreamManagerExporter(smHub(ob), dest);
    if (name === 'iotcore') return createIotCoreExporter({ bus: deps.bus, clock: deps.clock, siteId: config.siteId, outboxId: ob.id, probeIntervalMs: config.exporters.iotcore.probeIntervalMs, status });
    const s3 = config.exporters.s3;
    return createS3Exporter({
      siteId: config.siteId,
      thingName: deps.thingName ?? '',
      bucket: s3.bucket,
      prefix: s3.prefix,
      endpoint: s3.endpoint,
      region: s3.region || deps.awsRegion || '',
      forcePathStyle: s3.forcePathStyle,
      requestTimeoutMs: s3.requestTimeoutMs,
      outboxId: ob.id,
      tes: deps.tes ?? { fullUri: undefined, authorizationToken: undefined },
    });
  };

  const startSender = (name: ExporterName, ob: Outbox): void => {
    const ex = buildExporter(name, ob);
    exporters.set(name, ex);
    const iot = config.exporters.iotcore;
    const smc = config.exporters.streamManager;
    const isSm = smDestination(name) !== undefined;
    const now = deps.clock.now();
    senders.set(
      name,
      new Sender({
        index: EXPORTER_NAMES.indexOf(name),
        exporter: ex,
        outbox: ob,
        clock: deps.clock,
        logger: log,
        metrics: deps.metrics,
        concurrency: name === 'iotcore' ? iot.concurrency : isSm ? smc.concurrency : config.exporters.s3.concurrency,
        backoffInitialMs: config.backoffInitialMs,
        backoffMaxMs: config.backoffMaxMs,
        probeIntervalMs: name === 'iotcore' ? iot.probeIntervalMs : isSm ? smc.probeIntervalMs : config.exporters.s3.probeIntervalMs,
        ...(name === 'iotcore'
          ? { buckets: { publishes: new TokenBucket(iot.publishesPerSecond, Math.max(1, Math.ceil(iot.publishesPerSecond / 10)), now), bytes: new TokenBucket(iot.bytesPerSecond, iot.bytesPerSecond / 4, now) } }
          : {}),
        ...(deps.random ? { random: deps.random } : {}),
        onDelivered: (b, ms) => deps.onDelivered?.(name, b, ms),
        onStateChange: () => publishStatus(),
      }),
    );
    unregister.set(`backlog_${name}`, deps.metrics.registerQueue(`backlog_${name}`, () => ob.pendingFor(EXPORTER_NAMES.indexOf(name))));
  };

  const stopSender = async (name: ExporterName): Promise<void> => {
    senders.get(name)?.close();
    senders.delete(name);
    unregister.get(`backlog_${name}`)?.();
    unregister.delete(`backlog_${name}`);
    const ex = exporters.get(name);
    exporters.delete(name);
    await ex?.close().catch(() => undefined);
    // The last Stream Manager exporter closed the shared connection: the next one opens a new one.
    if (![...exporters.keys()].some((n) => smDestination(n) !== undefined && !deps.exporters?.[n])) hub = undefined;
  };

  const expireTick = (): void => {
    const ob = outbox;
    if (!ob) return;
    const n = ob.expire(deps.clock.now(), config.maxAgeMs);
    if (n > 0) {
      deps.metrics.drop('expired', n);
      log.warn('undelivered records older than maxAgeMs dropped', { expired: n, maxAgeMs: config.maxAgeMs });
    }
    ob.forgetSeen(deps.clock.now() - SEEN_RETENTION_MS);
    ob.reclaim();
  };

  return {
    get outbox() {
      return outbox;
    },
    alarmSync,
    ingest,
    ingestAlarm,
    flush,
    status,
    async start() {
      const file = path.resolve(deps.workDir ?? '.', config.outboxPath);
      outbox = new Outbox({ path: file, synchronous: config.outboxSynchronous, maxBytes: config.maxOutboxBytes, ...(deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}) });
      const ob = outbox;
      alarmSync.load(ob.sourcePositions());
      log.info('outbox open', { file, outboxId: ob.id, bytes: ob.bytes, backlog: ob.backlog(), alarmSources: ob.sourcePositions() });
      if (unrouted.size > 0) log.warn('classes routed to no enabled exporter are not forwarded', { classes: [...unrouted], enabled: enabledNow() });
      for (const name of enabledNow()) startSender(name, ob);
      for (const c of CLASSES) unregister.set(`outbox_${c}`, deps.metrics.registerQueue(`outbox_${c}`, () => ob.backlog()[c]));
      const expired = ob.expire(deps.clock.now(), config.maxAgeMs);
      if (expired > 0) {
        deps.metrics.drop('expired', expired);
        log.warn('records older than maxAgeMs dropped at start', { expired });
      }
      await syncSubscriptions(false);
      // Whatever was published while we were away reached nobody: ask the alarm sources.
      if (!unrouted.has('alarms')) alarmSync.request('start');
      timers.push(deps.clock.setInterval(() => {
        flush();
        seal();
      }, SEAL_TICK_MS));
      timers.push(deps.clock.setInterval(expireTick, EXPIRE_TICK_MS));
      timers.push(deps.clock.setInterval(publishStatus, config.statusIntervalMs));
      // A backlog from before a restart goes first.
      seal();
      for (const s of senders.values()) s.kick(true);
    },
    async reconfigure(next, prev) {
      const ob = outbox;
      if (!ob) return;
      flush();
      config = next;
      const changed = (f: (c: Readonly<UplinkConfig>) => unknown): boolean => !deepEqual(f(next), f(prev));
      ob.setMaxBytes(next.maxOutboxBytes);
      if (changed((c) => c.outboxPath)) log.warn('outboxPath changes take effect at the next start (the outbox holds undelivered data)', { outboxPath: prev.outboxPath });
      // Senders: rebuilt for an exporter whose settings changed, added or removed with `enabled`.
      const shared = (c: Readonly<UplinkConfig>) => [c.backoffInitialMs, c.backoffMaxMs, c.siteId];
      // The Stream Manager streams follow the routes and the outbox's bounds too.
      const smShared = (c: Readonly<UplinkConfig>) => [c.routes, c.maxOutboxBytes, c.maxAgeMs, c.statusIntervalMs];
      const smChanged = EXPORTER_NAMES.some((n) => smDestination(n) !== undefined && (changed((c) => exporterSettings(c, n)) || changed(smShared)));
      for (const name of EXPORTER_NAMES) {
        const differs = changed((c) => exporterSettings(c, name)) || changed(shared) || (smDestination(name) !== undefined && smChanged);
        if (senders.has(name) && (differs || !exporterEnabled(next, name))) await stopSender(name);
      }
      for (const name of EXPORTER_NAMES) if (!senders.has(name) && exporterEnabled(next, name)) startSender(name, ob);
      const alarmsWereRouted = !unrouted.has('alarms');
      unrouted = unroutedNow();
      await syncSubscriptions(changed((c) => c.siteId));
      // Alarms forwarded from now on: whatever the sources journaled meanwhile is asked for.
      if (!unrouted.has('alarms') && (!alarmsWereRouted || changed((c) => c.siteId))) alarmSync.request('routes');
      if (changed((c) => c.statusIntervalMs)) {
        deps.clock.clearInterval(timers.pop());
        timers.push(deps.clock.setInterval(publishStatus, next.statusIntervalMs));
      }
      seal();
      for (const s of senders.values()) s.kick(true);
    },
    healthState() {
      // A Stream Manager export that reports an error is degraded too (its name and error are the metrics' lastError).
      return [...senders.values()].every((s) => s.isOnline) && (hub?.failing().length ?? 0) === 0 ? 'running' : 'degraded';
    },
    async close() {
      if (closed) return;
      flush();
      closed = true;
      alarmSync.close();
      for (const t of timers) deps.clock.clearInterval(t);
      for (const s of senders.values()) s.close();
      for (const u of unregister.values()) u();
      await Promise.all([...subs.values()].map((s) => s.close().catch(() => undefined)));
      subs.clear();
      await Promise.all([...exporters.values()].map((e) => e.close().catch(() => undefined)));
      outbox?.close();
    },
  };
}
