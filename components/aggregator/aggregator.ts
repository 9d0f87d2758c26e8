/**
 * com.dcmms.edge.Aggregator (dCMMS edge specification §5, docs/specification.md): 1-minute,
 * 15-minute and daily rollups of the Processor's store, persisted in the Aggregator's own SQLite
 * file and published on the contract's aggregates and daily-summary topics. docs/aggregator.md.
 *
 * Lifecycle (docs/conventions.md): the factory validates the configuration and does no I/O;
 * `start` opens the database, subscribes to the store's commit notices, schedules the minute and
 * day jobs and runs a first catch-up tick; `close` cancels the jobs, waits for a running tick and
 * closes both databases.
 *
 * Where it learns of data: new minutes are closed by time (a minute `closeDelayMs` after its end);
 * late data from the store's late log, which the Processor's store writes in the same transaction
 * as the late samples (docs/store.md "Readers"). The log is read at start, when a
 * commit notice shows a newer `lateLogId`, and on every tick (a notice can be lost). Units come
 * from the store's series list. Nothing comes from processed telemetry.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bus, PublishOutcome, Subscription } from '../lib/bus-types';
import type { Clock } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { filters, topics, type ComponentState, type StoreCommitNotice } from '../lib/contract';
import { deepEqual } from '../lib/config';
import { ConfigError, errorMessage } from '../lib/errors';
import { createLogLimiter } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { openStoreReader } from '../lib/store';
import { checkAggregatorConfig, type AggregatorConfig } from './config';
import { AggDb, type OutboxLevel } from './db';
import { Engine, type EngineCounters, type StoreReading } from './engine';
import { buildMessages, type Outgoing } from './publish';
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
  /** Opens the store read-only (default: the store's reader, `openStoreReader`); tests may wrap it. */
  openStore?: (file: string) => StoreReading & { close(): void };
}

export interface AggregatorCounters extends EngineCounters {
  /** Messages the bus accepted ('sent'); their outbox rows are gone. */
  published: number;
  /** Publishes the bus only queued (IPC down): that tick stopped publishing, the rows stayed. */
  publishQueued: number;
  /** Publishes the bus refused (an error): likewise. */
  publishFailed: number;
  /** Pages of aggregates.db given back to the file system after retention. */
  reclaimedPages: number;
}

export interface Aggregator extends ComponentInstance<AggregatorConfig> {
  /** One tick: the late log, closing, retention, publishing. Ticks never overlap. */
  tick(): Promise<void>;
  counters(): AggregatorCounters;
  readonly engine: Engine | undefined;
  readonly db: AggDb | undefined;
}

const RETENTION_EVERY_MS = 3_600_000;
const PUBLISH_BATCH = 5000;
/** Late-log entries re-aggregated per transaction (the loop yields between batches). */
const LATE_BATCH = 200;

export function createAggregator(deps: AggregatorDeps, initial: Readonly<AggregatorConfig>): Aggregator {
  checkAggregatorConfig(initial);
  let config = initial;
  const log = deps.logger.child({ module: 'aggregator' });
  const limited = createLogLimiter(deps.clock);
  let zone = new Zone(config.timeZone);
  const scheduler = deps.scheduler ?? nodeScheduler;
  const workDir = deps.workDir ?? '.';
  const storeFileOf = (c: Readonly<AggregatorConfig>): string => {
    const f = c.storePath || deps.defaultStorePath || '';
    if (!f) throw new ConfigError('storePath', 'storePath is empty and DCMMS_PROCESSOR_STORE is not set: the Aggregator does not know where the Processor store is');
    return f;
  };
  let storeFile = storeFileOf(config);
  const resolve = (p: string): string => (path.isAbsolute(p) ? p : path.join(workDir, p));
  // The store's one read-only reader (components/lib/store): the Processor owns the file.
  const openStore = deps.openStore ?? ((file: string) => openStoreReader(file, deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}));

  let db: AggDb | undefined;
  let store: (StoreReading & { close(): void }) | undefined;
  let engine: Engine | undefined;
  let closed = false;
  let running: Promise<void> | undefined;
  let again = false;
  /** While `reconfigure` swaps files: ticks asked for meanwhile run once it is done. */
  let paused = false;
  let tickWanted = false;
  let lastRetention = -Infinity;
  let state: ComponentState = 'running';
  /** Newest late-log id known done (ours) and announced (notices): a notice beyond it starts a tick. */
  let lateDone = 0;
  let cancels: Array<() => void> = [];
  let subs: Subscription[] = [];
  const pub = { published: 0, publishQueued: 0, publishFailed: 0 };

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
    engine = new Engine(store, db, zone, config, yieldTurn);
    checkStoreIdentity(store, db);
    engine.init(deps.clock.now());
    state = 'running';
    log.info('store opened', { file, closed1m: new Date(engine.watermark('1m')).toISOString(), lateLog: db.progress('lateLog') ?? 0 });
    return true;
  }

  /**
   * Late-log ids count per file. A different store file (the Processor's was replaced) starts its
   * ids again, so our position in the old one means nothing: start at its beginning.
   */
  function checkStoreIdentity(s: StoreReading, d: AggDb): void {
    const id = s.info().storeId;
    if (id === undefined) return;
    const known = d.meta('storeId');
    if (known !== undefined && known !== id && d.progress('lateLog') !== undefined) {
      log.warn('the Processor store is a different file than before: reading its late log from the start', { was: known, now: id });
      d.tx(() => d.setProgress('lateLog', 0));
    }
    if (known !== id) d.setMeta('storeId', id);
  }

  /** Re-aggregates what the late log added since our position, batch by batch, each with the new position. */
  async function readLateLog(e: Engine, s: StoreReading, d: AggDb, now: number): Promise<void> {
    const head = s.lateLogHead();
    let after = d.progress('lateLog') ?? 0;
    if (head < after) {
      // Ids never go back within one file: a file without our entries (restored from a copy).
      log.warn('store late log is behind our position: reading it from the start', { head, position: after });
      after = 0;
    }
    while (after < head && !closed) {
      const entries = s.lateLog(after, LATE_BATCH);
      const last = entries[entries.length - 1];
      if (!last) {
        // Pruned by the store's retention before we read them: samples as old as its retention.
        log.warn('late-log entries were pruned before they were read', { from: after + 1, to: head });
        d.tx(() => d.setProgress('lateLog', head));
        break;
      }
      if ((entries[0] as { id: number }).id > after + 1) log.warn('late-log entries were pruned before they were read', { from: after + 1, to: (entries[0] as { id: number }).id - 1 });
      const changed = e.reaggregate(e.lateMarks(entries, now), () => d.setProgress('lateLog', last.id));
      if (changed) log.info('late data re-aggregated', { entries: entries.length, minutes: changed, lateLog: last.id });
      after = last.id;
      if (after < head) await yieldTurn();
    }
    lateDone = Math.max(lateDone, after);
  }

  function send(out: Outgoing): Promise<PublishOutcome> {
    if (out.kind === 'summary') return deps.bus.publish(topics.dailySummary(config.siteId), out.message);
    return deps.bus.publish(topics.aggregates(config.siteId, out.message.interval, out.message.assetId), out.message);
  }

  /**
   * Publishes the outbox, oldest buckets first. A row goes only once the bus took its message
   * ('sent'). When the bus only queued it (IPC down) or refused it, publishing stops for this tick
   * and the rest waits for the next: the bus's queue is bounded and shared, and the rows are the
   * durable copy. A queued message may still go out when IPC is back, and its row is published
   * again by a later tick: at least once (the cloud keeps the highest revision of a bucket).
   */
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
      const messages = buildMessages(d, config, g.level, g.start, g.assets);
      // Rows without rollup rows (pruned meanwhile) have nothing to publish: they go too.
      const done = new Set([...g.assets].filter((a) => !messages.some((m) => assetOf(m) === a)));
      let stopped = false;
      for (const out of messages) {
        let outcome: PublishOutcome;
        try {
          outcome = await send(out);
        } catch (err) {
          pub.publishFailed += 1;
          deps.metrics.recordError(err);
          limited('publish', (suppressed) => log.warn('publish refused; the outbox keeps the rest for the next tick', { err: errorMessage(err), suppressed }));
          stopped = true;
          break;
        }
        if (outcome !== 'sent') {
          pub.publishQueued += 1;
          limited('publish-queued', (suppressed) => log.warn('IPC down (publish queued): the outbox keeps the rest for the next tick', { outbox: d.outboxSize(), suppressed }));
          stopped = true;
          break;
        }
        pub.published += 1; // messagesOut: counted by the bus
        done.add(assetOf(out));
      }
      if (done.size) d.tx(() => done.forEach((a) => d.outboxDone(g.level, g.start, a)));
      if (stopped) return;
    }
  }

  async function runTick(): Promise<void> {
    if (!ensureStore()) return;
    const e = engine as Engine;
    const d = db as AggDb;
    const s = store as StoreReading;
    const now = deps.clock.now();
    // The log first: an entry for a minute not closed yet is left to the close below, which reads
    // the store after the entry was committed and so sees its samples.
    await readLateLog(e, s, d, now);
    const t0 = Date.now();
    await e.close(now, closeDelay(s));
    deps.metrics.observeLatency(Date.now() - t0);
    if (now - lastRetention >= RETENTION_EVERY_MS) {
      lastRetention = now;
      const free = d.freePages();
      const { deleted } = e.retention(now);
      // The pages the deletion freed go back to the file system in bounded steps (a reserve of what
      // the last two runs both freed stays: the next hour's rows would take them again).
      d.reclaimer.afterRun(d.freePages() - free);
      if (deleted) log.info('rollup retention', { deleted, freedPages: d.freePages() - free });
    }
    while (!closed && d.reclaimer.step()) await yieldTurn();
    await publishOutbox();
  }

  /**
   * The close delay actually used: at least the store's `lateAfterMs`, which checkAggregatorConfig
   * can only check against the store's default. A sample committed within lateAfterMs of its time
   * is not logged, so a minute closed sooner could miss it for good (docs/aggregator.md "Late data").
   */
  function closeDelay(s: StoreReading): number {
    const late = s.info().lateAfterMs;
    if (late === undefined || late <= config.closeDelayMs) return config.closeDelayMs;
    limited('close-delay', (suppressed) => log.warn('closeDelayMs is shorter than the store\'s lateAfterMs: closing minutes after lateAfterMs instead', { closeDelayMs: config.closeDelayMs, lateAfterMs: late, suppressed }));
    return late;
  }

  async function tick(): Promise<void> {
    if (closed) return;
    if (paused) {
      tickWanted = true;
      return;
    }
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
      } while (again && !closed && !paused);
      if (again) tickWanted = true;
    })().finally(() => (running = undefined));
    return running;
  }

  function openDb(): void {
    db = new AggDb(resolve(config.dbPath), deps.nativeBinding);
    if (db.fileModeProblems.length) log.warn('aggregator database file mode not set', { problems: db.fileModeProblems });
  }

  function closeStore(): void {
    store?.close();
    store = undefined;
    engine = undefined;
    lateDone = 0;
  }

  function schedule(): void {
    cancels.splice(0).forEach((c) => c());
    const r = rules(config.closeDelayMs, config.dayCloseDelayMs);
    cancels.push(scheduler.schedule('aggregator-1m', r.minute, config.timeZone, () => void tick()));
    cancels.push(scheduler.schedule('aggregator-1d', r.day, config.timeZone, () => void tick()));
  }

  /**
   * Live configuration. Retention, slices, close delays, power and energy points take effect at the
   * next tick (the engine and the publisher read the current configuration; new retention runs at
   * once; new delays reschedule the jobs). `timeZone` and `dbPath` are an internal restart of the
   * Aggregator's own work, done here rather than by the framework: wait for a running tick, close
   * the store reader and the database, reopen with the new configuration, reschedule, tick. (A
   * `reconfigure` that threw instead would leave the new configuration current but unapplied, and
   * none at all would restart the component for every change.) `storePath` reopens the reader only;
   * `siteId` moves the notice subscription. docs/aggregator.md "Live configuration".
   */
  async function reconfigure(next: Readonly<AggregatorConfig>, prev: Readonly<AggregatorConfig>): Promise<void> {
    const changed = (k: keyof AggregatorConfig): boolean => !deepEqual(next[k], prev[k]);
    const restart = changed('timeZone') || changed('dbPath');
    const nextStoreFile = storeFileOf(next);
    paused = true;
    try {
      await running?.catch(() => undefined);
      if (closed) return;
      if (restart || nextStoreFile !== storeFile) closeStore();
      if (restart) {
        db?.close();
        db = undefined;
      }
      config = next;
      storeFile = nextStoreFile;
      if (changed('timeZone')) zone = new Zone(next.timeZone);
      engine?.configure(next);
      if (restart) openDb();
      if (changed('retention1mMs') || changed('retention15mMs') || changed('retention1dMs') || restart) lastRetention = -Infinity;
      if (changed('siteId')) {
        const old = subs;
        subs = [await deps.bus.subscribe(filters.storeCommits(next.siteId), (n) => onNotice(n))];
        await Promise.all(old.map((x) => x.close().catch(() => undefined)));
      }
      if (restart || changed('closeDelayMs') || changed('dayCloseDelayMs')) schedule();
      if (restart) log.info('aggregator restarted its work for the new configuration', { timeZone: next.timeZone, dbPath: next.dbPath });
    } finally {
      paused = false;
    }
    if (restart || tickWanted) {
      tickWanted = false;
      void tick();
    }
  }

  /** A commit notice: only its late-log id matters here (new minutes are closed by time). */
  function onNotice(n: StoreCommitNotice): void {
    if (n.lateLogId === undefined || n.lateLogId <= lateDone) return;
    lateDone = n.lateLogId;
    void tick();
  }

  return {
    get engine() {
      return engine;
    },
    get db() {
      return db;
    },
    tick,
    reconfigure,
    counters: () => ({
      ...(engine?.counters ?? { closed1m: 0, closed15m: 0, closedDays: 0, rows: 0, reaggregated: 0, lateEntries: 0, samplesRead: 0 }),
      ...pub,
      reclaimedPages: db?.counters.reclaimedPages ?? 0,
    }),
    async start() {
      openDb();
      deps.metrics.registerQueue('outbox', () => (db && db.db.open ? db.outboxSize() : 0));
      subs.push(await deps.bus.subscribe(filters.storeCommits(config.siteId), (n) => onNotice(n)));
      schedule();
      void tick();
    },
    async close() {
      if (closed) return;
      closed = true;
      cancels.splice(0).forEach((c) => c());
      for (const s of subs.splice(0)) await s.close().catch(() => undefined);
      await running?.catch(() => undefined);
      closeStore();
      db?.close();
    },
    healthState: () => state,
  };
}

function assetOf(out: Outgoing): string {
  return out.kind === 'summary' ? '' : out.message.assetId;
}
