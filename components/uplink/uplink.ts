/**
 * com.dcmms.edge.Uplink (issue 5 §2; edge-computing-spec.md §3.1 "store-and-forward", §7): every
 * record the cloud must get is persisted in the outbox when it arrives, sealed into gzip batches per
 * priority class, and sent by one sender per exporter (IoT Core, S3), which removes a batch only once
 * its exporter confirmed it. See README.md for the policies.
 *
 * Lifecycle (CONVENTIONS.md): the factory only validates; `start` opens the outbox, builds the
 * exporters, subscribes and starts the timers; `close` is idempotent.
 */
import path from 'node:path';
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { CONTRACT_VERSION, filters, iotTopics, type AggregateMessage, type UplinkStatus } from '../lib/contract';
import { errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { CLASSES, classOf, type RecordClass } from './classes';
import { checkUplinkConfig, EXPORTER_NAMES, type ExporterName, type UplinkConfig } from './config';
import { createIotCoreExporter } from './exporters/iotcore';
import { createS3Exporter } from './exporters/s3';
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
  /** Replace an exporter (tests, benchmarks); default: built from the configuration. */
  exporters?: Partial<Record<ExporterName, Exporter>>;
  random?: () => number;
  onDelivered?: (exporter: ExporterName, b: BatchMeta, latencyMs: number) => void;
}

export interface Uplink extends ComponentInstance<UplinkConfig> {
  /** One message as it came off the bus. */
  ingest(cls: RecordClass, payload: unknown): void;
  /** Persist what is buffered and seal what is due now (tests). */
  flush(force?: boolean): void;
  status(): UplinkStatus;
  readonly outbox: Outbox | undefined;
}

const SEAL_TICK_MS = 250;
const EXPIRE_TICK_MS = 60000;

export function createUplink(deps: UplinkDeps, config: Readonly<UplinkConfig>): Uplink {
  const log = deps.logger.child({ module: 'uplink' });
  const enabled = EXPORTER_NAMES.filter((n) => config.exporters[n].enabled);
  checkUplinkConfig(config);
  const routeIdx = (cls: RecordClass): number[] => config.routes[cls].filter((e) => enabled.includes(e)).map((e) => EXPORTER_NAMES.indexOf(e));

  let outbox: Outbox | undefined;
  const senders = new Map<ExporterName, Sender>();
  const exporters: Exporter[] = [];
  const subs: Subscription[] = [];
  const timers: TimerHandle[] = [];
  const unregister: Array<() => void> = [];
  let pending: AppendItem[] = [];
  let flushScheduled = false;
  let urgent = false;
  let closed = false;

  const status = (): UplinkStatus => ({
    schemaVersion: CONTRACT_VERSION,
    siteId: config.siteId,
    ts: deps.clock.now(),
    exporters: Object.fromEntries(EXPORTER_NAMES.map((n) => [n, senders.get(n)?.status() ?? { state: 'disabled', lastSuccessAt: null, consecutiveFailures: 0, nextAttemptAt: null, lastError: null, backlogBatches: 0 }])),
    outboxBytes: outbox?.bytes ?? 0,
    maxOutboxBytes: config.maxOutboxBytes,
    backlog: outbox?.backlog() ?? {},
    dropped: outbox?.droppedCounts() ?? {},
    compressionRatio: outbox?.compressionRatio() ?? null,
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
    if (!outbox || closed) return;
    if (pending.length > 0) {
      const items = pending;
      pending = [];
      const dropped = outbox.append(items);
      if (dropped > 0) {
        deps.metrics.drop('overflow', dropped);
        log.warn('outbox full: records dropped by the overflow policy', { dropped, bytes: outbox.bytes, maxBytes: config.maxOutboxBytes });
      }
    }
    if (urgent || force) seal(force);
    urgent = false;
  };

  // A class routed to no enabled exporter (the defaults route 1m and health to S3 only, and S3 is
  // off by default) is not subscribed to at all: it could never leave the outbox. That is the
  // configuration's choice, not data loss, so it is logged once at start and not counted as dropped
  // (Health would otherwise report the site degraded for as long as S3 is off).
  const unrouted = new Set(CLASSES.filter((c) => routeIdx(c).length === 0));

  const ingest = (cls: RecordClass, payload: unknown): void => {
    if (closed) return;
    deps.metrics.incIn();
    if (unrouted.has(cls)) return; // not subscribed; only a message already in flight gets here
    pending.push({ cls, receivedAt: deps.clock.now(), body: JSON.stringify(payload) });
    if (config.batchDelayMs[cls] === 0) urgent = true;
    // Group commit: everything that arrived in this event-loop turn goes in one transaction.
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(() => flush());
    }
  };

  const subscribeAll = async (): Promise<void> => {
    const site = config.siteId;
    const guard = <P extends { siteId: string }>(family: string, cls: (p: P) => RecordClass | undefined) => (p: P): void => {
      if (p.siteId !== site) {
        deps.metrics.reject('site_mismatch');
        return;
      }
      const c = cls(p);
      if (c) ingest(c, p);
      else deps.metrics.reject(`unroutable_${family}`);
    };
    const routed = (c: RecordClass): boolean => !unrouted.has(c);
    if (routed('alarms')) subs.push(await deps.bus.subscribe(filters.alarms(site), guard('alarms', () => classOf('alarms'))));
    if (routed('events')) {
      subs.push(await deps.bus.subscribe(filters.controlResult(site), guard('controlResult', () => classOf('controlResult'))));
      subs.push(await deps.bus.subscribe(filters.deviceStatus(site), guard('deviceStatus', () => classOf('deviceStatus'))));
    }
    // One subscription per forwarded interval, so rollups nobody forwards are never delivered here.
    for (const interval of ['1m', '15m', '1d'] as const) {
      if (routed(interval)) subs.push(await deps.bus.subscribe(filters.aggregates(site, interval), guard('aggregates', (p: AggregateMessage) => classOf('aggregates', p.interval))));
    }
    if (routed('1d')) subs.push(await deps.bus.subscribe(filters.dailySummary(site), guard('dailySummary', () => classOf('dailySummary'))));
    if (routed('health')) subs.push(await deps.bus.subscribe(filters.healthSummary(site), guard('healthSummary', () => classOf('healthSummary'))));
  };

  const publishStatus = (): void => {
    const iot = senders.get('iotcore');
    // The status publish is also the IoT Core probe; while that exporter is backing off, its own retry probes.
    if (!iot || !iot.isOnline) return;
    deps.bus.publishToIoTCore(iotTopics.uplinkStatus(config.siteId), status(), 0).catch((err: unknown) => {
      log.debug('uplink status not published', { err: errorMessage(err) });
    });
  };

  return {
    get outbox() {
      return outbox;
    },
    ingest,
    flush,
    status,
    async start() {
      const file = path.resolve(deps.workDir ?? '.', config.outboxPath);
      outbox = new Outbox({ path: file, synchronous: config.outboxSynchronous, maxBytes: config.maxOutboxBytes, ...(deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}) });
      const ob = outbox;
      log.info('outbox open', { file, outboxId: ob.id, bytes: ob.bytes, backlog: ob.backlog() });
      if (unrouted.size > 0) log.warn('classes routed to no enabled exporter are not forwarded', { classes: [...unrouted], enabled });
      for (const name of enabled) {
        let ex = deps.exporters?.[name];
        if (!ex && name === 'iotcore') {
          ex = createIotCoreExporter({ bus: deps.bus, clock: deps.clock, siteId: config.siteId, probeIntervalMs: config.exporters.iotcore.probeIntervalMs, status });
        } else if (!ex) {
          const s3 = config.exporters.s3;
          ex = createS3Exporter({ siteId: config.siteId, bucket: s3.bucket, prefix: s3.prefix, endpoint: s3.endpoint, region: s3.region || deps.awsRegion || '', forcePathStyle: s3.forcePathStyle, requestTimeoutMs: s3.requestTimeoutMs, outboxId: ob.id });
        }
        exporters.push(ex);
        const iot = config.exporters.iotcore;
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
            concurrency: name === 'iotcore' ? iot.concurrency : config.exporters.s3.concurrency,
            backoffInitialMs: config.backoffInitialMs,
            backoffMaxMs: config.backoffMaxMs,
            ...(name === 'iotcore'
              ? { buckets: { publishes: new TokenBucket(iot.publishesPerSecond, Math.max(1, Math.ceil(iot.publishesPerSecond / 10)), now), bytes: new TokenBucket(iot.bytesPerSecond, iot.bytesPerSecond / 4, now) } }
              : {}),
            ...(deps.random ? { random: deps.random } : {}),
            onDelivered: (b, ms) => deps.onDelivered?.(name, b, ms),
            onStateChange: () => publishStatus(),
          }),
        );
        unregister.push(deps.metrics.registerQueue(`backlog_${name}`, () => ob.pendingFor(EXPORTER_NAMES.indexOf(name))));
      }
      for (const c of CLASSES) unregister.push(deps.metrics.registerQueue(`outbox_${c}`, () => ob.backlog()[c]));
      const expired = ob.expire(deps.clock.now(), config.maxAgeMs);
      if (expired > 0) {
        deps.metrics.drop('expired', expired);
        log.warn('records older than maxAgeMs dropped at start', { expired });
      }
      await subscribeAll();
      timers.push(deps.clock.setInterval(() => {
        flush();
        seal();
      }, SEAL_TICK_MS));
      timers.push(deps.clock.setInterval(() => {
        const n = outbox?.expire(deps.clock.now(), config.maxAgeMs) ?? 0;
        if (n > 0) {
          deps.metrics.drop('expired', n);
          log.warn('undelivered records older than maxAgeMs dropped', { expired: n, maxAgeMs: config.maxAgeMs });
        }
      }, EXPIRE_TICK_MS));
      timers.push(deps.clock.setInterval(publishStatus, config.statusIntervalMs));
      // A backlog from before a restart goes first.
      seal();
      for (const s of senders.values()) s.kick(true);
    },
    healthState() {
      return [...senders.values()].every((s) => s.isOnline) ? 'running' : 'degraded';
    },
    async close() {
      if (closed) return;
      flush();
      closed = true;
      for (const t of timers) deps.clock.clearInterval(t);
      for (const s of senders.values()) s.close();
      for (const u of unregister) u();
      await Promise.all(subs.map((s) => s.close().catch(() => undefined)));
      await Promise.all(exporters.map((e) => e.close().catch(() => undefined)));
      outbox?.close();
    },
  };
}
