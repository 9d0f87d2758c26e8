/**
 * com.dcmms.edge.Aggregator (issue 5 §1; edge-computing-spec.md §5): 1-minute, 15-minute and
 * daily rollups of the Processor's store, persisted in the Aggregator's own SQLite file and
 * published on the contract's aggregates and daily-summary topics. docs/aggregator.md.
 *
 * Lifecycle (CONVENTIONS.md): the factory validates the time zone and does no I/O; `start` opens
 * the database, subscribes to processed telemetry (late data and units), schedules the minute and
 * day jobs and runs a first catch-up tick; `close` cancels the jobs, waits for a running tick and
 * closes both databases.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { filters, topics, type ComponentState, type TelemetryMessage } from '../lib/contract';
import { ConfigError, errorMessage } from '../lib/errors';
import { createLogLimiter } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { openStoreReader } from '../lib/store';
import { checkAggregatorConfig, type AggregatorConfig } from './config';
import { AggDb, type OutboxLevel } from './db';
import { Engine, MINUTE, type StoreReading } from './engine';
import { buildMessages } from './publish';
import { nodeScheduler, rules, type Scheduler } from './scheduler';
import { Zone } from './tz';

export interface AggregatorDeps {
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  fail(err: unknown): void;
  /** Folder relative paths are resolved against (main.ts: the work folder, its cwd). */
  workDir?: string;
  /** better-sqlite3's addon file (main.ts: DCMMS_BETTER_SQLITE3_BINDING). */
  nativeBinding?: string;
  /** Store path when the configuration leaves `storePath` empty (main.ts: DCMMS_PROCESSOR_STORE from the recipe). */
  defaultStorePath?: string;
  scheduler?: Scheduler;
  /** Opens the store read-only; tests may inject one. */
  openStore?: (file: string) => StoreReading & { close(): void };
}

export interface Aggregator extends ComponentInstance<AggregatorConfig> {
  /** One tick: late marks, closing, audit when due, retention, publishing. Ticks never overlap. */
  tick(): Promise<void>;
  /** Processed telemetry as the bus hands it (late data, units). */
  observe(msg: TelemetryMessage): void;
  readonly engine: Engine | undefined;
  readonly db: AggDb | undefined;
}

const RETENTION_EVERY_MS = 3_600_000;
const PUBLISH_BATCH = 5000;

export function createAggregator(deps: AggregatorDeps, config: Readonly<AggregatorConfig>): Aggregator {
  checkAggregatorConfig(config);
  const log = deps.logger.child({ module: 'aggregator' });
  const limited = createLogLimiter(deps.clock);
  const zone = new Zone(config.timeZone);
  const scheduler = deps.scheduler ?? nodeScheduler;
  const workDir = deps.workDir ?? '.';
  const storeFile = config.storePath || deps.defaultStorePath || '';
  if (!storeFile) throw new ConfigError('storePath', 'storePath is empty and DCMMS_PROCESSOR_STORE is not set: the Aggregator does not know where the Processor store is');
  const resolve = (p: string): string => (path.isAbsolute(p) ? p : path.join(workDir, p));
  // The store's one read-only reader (components/lib/store): the Processor owns the file.
  const openStore = deps.openStore ?? ((file: string) => openStoreReader(file, deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}));

  let db: AggDb | undefined;
  let store: (StoreReading & { close(): void }) | undefined;
  let engine: Engine | undefined;
  let closed = false;
  let running: Promise<void> | undefined;
  let again = false;
  let lastAudit = -Infinity;
  let lastRetention = -Infinity;
  let state: ComponentState = 'running';
  const cancels: Array<() => void> = [];
  const subs: Subscription[] = [];
  /** asset -> minute -> when the late message arrived. */
  const late = new Map<string, Map<number, number>>();
  const units = new Map<string, { asset: string; point: string; u: string }>();
  let closed1m = 0;

  const yieldTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

  function ensureStore(): boolean {
    if (store && engine) return true;
    if (!db) return false;
    const file = resolve(storeFile);
    if (!fs.existsSync(file)) {
      state = 'degraded';
      limited('store-missing', (suppressed) => log.warn('Processor store not there yet; waiting', { file, suppressed }));
      return false;
    }
    try {
      store = openStore(file);
    } catch (err) {
      // Not initialised yet (the Processor is creating it), or not openable read-only right now: a
      // reader that may not create files in the Processor's folder cannot open the store while the
      // Processor is stopped and its -wal/-shm are gone (docs/store.md). Tried again every tick.
      state = 'degraded';
      limited('store-open', (suppressed) => log.warn('Processor store cannot be opened yet; retrying', { file, err: errorMessage(err), suppressed }));
      return false;
    }
    engine = new Engine(store, db, zone, config, log, yieldTurn);
    engine.init(deps.clock.now());
    closed1m = engine.watermark('1m');
    state = 'running';
    log.info('store opened', { file, closed1m: new Date(closed1m).toISOString() });
    return true;
  }

  function takeLate(now: number): Map<string, Set<number>> {
    const out = new Map<string, Set<number>>();
    for (const [asset, minutes] of late) {
      for (const [m, at] of minutes) {
        if (at + config.lateSettleMs > now) continue;
        minutes.delete(m);
        let s = out.get(asset);
        if (!s) out.set(asset, (s = new Set()));
        s.add(m);
      }
      if (minutes.size === 0) late.delete(asset);
    }
    return out;
  }

  async function publishOutbox(): Promise<void> {
    const d = db as AggDb;
    const entries = d.outbox(PUBLISH_BATCH);
    const groups = new Map<string, { level: OutboxLevel; start: number; assets: Set<string> }>();
    for (const e of entries) {
      const k = `${e.level}|${e.start}`;
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { level: e.level, start: e.start, assets: new Set() }));
      g.assets.add(e.asset);
    }
    for (const g of groups.values()) {
      for (const out of buildMessages(d, config, g.level, g.start, g.assets)) {
        if (out.kind === 'summary') await deps.bus.publish(topics.dailySummary(config.siteId), out.message);
        else await deps.bus.publish(topics.aggregates(config.siteId, out.message.interval, out.message.assetId), out.message);
        deps.metrics.incOut();
      }
      d.tx(() => [...g.assets].forEach((a) => d.outboxDone(g.level, g.start, a)));
    }
  }

  async function runTick(): Promise<void> {
    if (!ensureStore()) return;
    const e = engine as Engine;
    const d = db as AggDb;
    const now = deps.clock.now();
    if (units.size) {
      d.tx(() => units.forEach((x) => d.setUnit(d.series(x.asset, x.point), x.u)));
      units.clear();
    }
    const marks = takeLate(now);
    if (marks.size) e.reaggregate(marks);
    const t0 = Date.now();
    await e.close(now);
    closed1m = e.watermark('1m');
    deps.metrics.observeLatency(Date.now() - t0);
    if (now - lastAudit >= config.auditIntervalMs) {
      lastAudit = now;
      const found = await e.audit(now);
      if (found.size) e.reaggregate(found);
    }
    if (now - lastRetention >= RETENTION_EVERY_MS) {
      lastRetention = now;
      const { deleted } = e.retention(now);
      if (deleted) log.info('rollup retention', { deleted });
    }
    await publishOutbox();
  }

  async function tick(): Promise<void> {
    if (closed) return;
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await runTick();
        } catch (err) {
          if (closed) return;
          deps.metrics.recordError(err);
          limited('tick', (suppressed) => log.error('aggregation tick failed', { err: errorMessage(err), suppressed }));
          if (err instanceof Error && /SQLITE_CORRUPT|SQLITE_NOTADB|FatalError/.test(`${err.name} ${err.message}`)) deps.fail(err);
        }
      } while (again && !closed);
    })().finally(() => (running = undefined));
    return running;
  }

  function observe(msg: TelemetryMessage): void {
    for (const [point, p] of Object.entries(msg.points)) {
      if (p.u !== undefined && typeof p.v === 'number') {
        const k = `${msg.assetId}\u0000${point}`;
        const known = db?.findSeries(msg.assetId, point)?.unit;
        if (known !== p.u) units.set(k, { asset: msg.assetId, point, u: p.u });
      }
    }
    // Spec §5.2 aggregates "the last minute"; a sample for a minute already closed is late data.
    if (msg.ts < closed1m) {
      const m = Math.floor(msg.ts / MINUTE) * MINUTE;
      let a = late.get(msg.assetId);
      if (!a) late.set(msg.assetId, (a = new Map()));
      a.set(m, deps.clock.now());
      if (engine) engine.counters.lateMarks += 1;
    }
  }

  return {
    get engine() {
      return engine;
    },
    get db() {
      return db;
    },
    tick,
    observe,
    async start() {
      db = new AggDb(resolve(config.dbPath), deps.nativeBinding);
      if (db.fileModeProblems.length) log.warn('aggregator database file mode not set', { problems: db.fileModeProblems });
      deps.metrics.registerQueue('outbox', () => (db && db.db.open ? db.outboxSize() : 0));
      subs.push(await deps.bus.subscribe(filters.processedTelemetry(config.siteId), (m) => observe(m)));
      const r = rules(config.closeDelayMs, config.dayCloseDelayMs);
      cancels.push(scheduler.schedule('aggregator-1m', r.minute, config.timeZone, () => void tick()));
      cancels.push(scheduler.schedule('aggregator-1d', r.day, config.timeZone, () => void tick()));
      void tick();
    },
    async close() {
      if (closed) return;
      closed = true;
      cancels.splice(0).forEach((c) => c());
      for (const s of subs.splice(0)) await s.close().catch(() => undefined);
      await running?.catch(() => undefined);
      store?.close();
      db?.close();
    },
    healthState: () => state,
  };
}
