/**
 * The raw time-series store (level 1 of the dCMMS edge specification §5.1, docs/specification.md): the Processor writes it with
 * `openStore`; the Aggregator, Analytics, ML and `dcmms-edge query` read it with `openStoreReader`
 * (a read-only connection; WAL lets it read while the writer writes). docs/store.md has the design.
 */
import fs from 'node:fs';
import { systemClock, type Clock, type TimerHandle } from '../clock';
import { ConfigError, errorMessage } from '../errors';
import { createLogLimiter } from '../log-limit';
import { silentLogger, type Logger } from '../logger';
import { HeadWriter } from './head';
import { Reader } from './query';
import { Reclaimer } from './reclaim';
import { Retention, statfsFreeSpace, type FreeSpace, type RetentionResult } from './retention';
import { openDatabase, type Db, type Synchronous } from './schema';
import { Sealer } from './seal';
import type { AppendResult, ChunkStatsResult, CommitInfo, LateLogEntry, RangeOptions, Sample, SeriesInfo, SeriesKey, StoreCounters, StoreInfo, StoreSample } from './types';

export * from './types';
export type { RetentionResult, FreeSpace } from './retention';
export type { Synchronous } from './schema';
export { Reclaimer } from './reclaim';

export interface StoreConfig {
  /** A sample waits in memory at most this long before its commit ends (the crash-loss window). */
  commitWindowMs: number;
  /** Buffered samples that force an immediate commit (bounds memory: ~30 bytes each). */
  maxBatchSamples: number;
  /** A failing commit is retried after commitWindowMs, doubling up to this (jittered). */
  commitRetryMaxMs: number;
  synchronous: Synchronous;
  /** How often the head is sealed into chunks. */
  sealIntervalMs: number;
  /** Head samples younger than this stay raw, so small reorderings are sorted for free. */
  sealLagMs: number;
  /** Target samples per chunk (a chunk grows to 2x this with late data before it splits). */
  chunkSamples: number;
  /** A chunk never spans more than this (slow series). */
  chunkMaxSpanMs: number;
  /** Most series per seal transaction. */
  sealSliceSeries: number;
  /** Head rows a seal transaction aims at (bounds how long it holds the event loop, and its memory). */
  sealSliceRows: number;
  /** Pages a reclaim step gives back to the file system (bounds how long it holds the event loop). */
  reclaimPagesPerStep: number;
  retentionMs: number;
  retentionIntervalMs: number;
  /** Bytes the database may use (pages in use); oldest chunks go first beyond it. */
  maxBytes: number;
  /** Free bytes the file system must keep; oldest chunks go first below it. */
  minFreeBytes: number;
  /** SQLite page cache, bytes. */
  cacheBytes: number;
  /**
   * A new sample older than this when committed goes to the late log (readers re-aggregate from
   * it). A reader that closes a time bucket `d` after its end must have d >= lateAfterMs, or
   * samples committed between the two would be neither seen nor logged (docs/store.md).
   */
  lateAfterMs: number;
}

export const STORE_DEFAULTS: Readonly<StoreConfig> = Object.freeze({
  commitWindowMs: 250,
  maxBatchSamples: 100_000,
  commitRetryMaxMs: 5_000,
  synchronous: 'FULL',
  sealIntervalMs: 60_000,
  sealLagMs: 10_000,
  chunkSamples: 720,
  chunkMaxSpanMs: 2 * 3600_000,
  sealSliceSeries: 500,
  sealSliceRows: 20_000,
  reclaimPagesPerStep: 1024,
  retentionMs: 7 * 24 * 3600_000,
  retentionIntervalMs: 60_000,
  maxBytes: 32 * 1024 ** 3,
  minFreeBytes: 2 * 1024 ** 3,
  cacheBytes: 32 * 1024 ** 2,
  lateAfterMs: 10_000,
});

export interface StoreDeps {
  path: string;
  clock?: Clock;
  logger?: Logger;
  /** Free space of a directory's file system (defaults to fs.statfs). */
  freeSpace?: FreeSpace;
  /** better-sqlite3's native addon file, when not loadable from node_modules (a bundled component). */
  nativeBinding?: string;
  /**
   * Mode bits of the database file, set at every open (default 0o640: the writer reads and
   * writes, its group reads, others nothing). SQLite gives the -wal and -shm files it creates the
   * database file's mode, so this decides theirs too, whatever the process's umask
   * (docs/store.md "Files, owners and permissions").
   */
  fileMode?: number;
}

/** Options of a read-only connection. */
export interface StoreReaderOptions {
  /** better-sqlite3's native addon file, when not loadable from node_modules (a bundled component). */
  nativeBinding?: string;
}

/** The writer's default mode bits for raw.db (and so for its -wal and -shm). */
export const STORE_FILE_MODE = 0o640;

/**
 * Sets the mode of a database file and of its -wal and -shm when they exist. A file another user
 * owns cannot be changed (EPERM): reported, not fatal, since SQLite can still use it if the mode
 * allows.
 */
export function applyFileMode(file: string, mode: number): string[] {
  const problems: string[] = [];
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if ((fs.statSync(f).mode & 0o777) !== mode) fs.chmodSync(f, mode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`${f}: ${errorMessage(e)}`);
    }
  }
  return problems;
}

export function validateStoreConfig(input: Partial<StoreConfig>): StoreConfig {
  const c: StoreConfig = { ...STORE_DEFAULTS, ...input };
  const positive: Array<keyof StoreConfig> = ['commitWindowMs', 'maxBatchSamples', 'commitRetryMaxMs', 'sealIntervalMs', 'chunkSamples', 'chunkMaxSpanMs', 'sealSliceSeries', 'sealSliceRows', 'reclaimPagesPerStep', 'retentionMs', 'retentionIntervalMs', 'maxBytes', 'cacheBytes'];
  for (const k of positive) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ConfigError(k, `store ${k} must be a positive integer, not ${String(v)}`);
  }
  for (const k of ['sealLagMs', 'minFreeBytes', 'lateAfterMs'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) throw new ConfigError(k, `store ${k} must be a non-negative integer, not ${String(c[k])}`);
  }
  if (c.synchronous !== 'FULL' && c.synchronous !== 'NORMAL') throw new ConfigError('synchronous', `store synchronous must be FULL or NORMAL, not ${String(c.synchronous)}`);
  return Object.freeze(c);
}

export interface StoreReader {
  range(key: SeriesKey, fromMs: number, toMs: number, opts?: RangeOptions): Sample[];
  chunkStats(key: SeriesKey, fromMs: number, toMs: number): ChunkStatsResult;
  /** Every series with its unit (null: none given, or a file of an older writer). */
  listSeries(): SeriesInfo[];
  /** Newest late-log id ever written to this file (0: none, or an older writer's file). Pruned entries keep their ids. */
  lateLogHead(): number;
  /** Late-log entries with id > afterId, oldest first, at most `limit` (default 1000). */
  lateLog(afterId: number, limit?: number): LateLogEntry[];
  /** The file's identity and the writer's late threshold. */
  info(): StoreInfo;
  /** Every stored timestamp of a series, duplicates included (diagnostics, crash tests). */
  rawTimestamps(key: SeriesKey): { chunk: number[]; head: number[] };
  close(): void;
}

export interface Store extends StoreReader {
  /**
   * Buffers samples; returns a ticket. The samples it accepted are durable once `onCommit` reports
   * a ticket >= it. Samples it refused are not: use `tryAppend` to learn how many.
   */
  append(samples: readonly StoreSample[]): number;
  /** `append` that also says how many samples were accepted and how many refused, by reason. */
  tryAppend(samples: readonly StoreSample[]): AppendResult;
  /** Commits the buffer now (synchronous: when it returns, the samples are durable). */
  flush(): CommitInfo | undefined;
  onCommit(fn: (c: CommitInfo) => void): () => void;
  /** Highest ticket known durable. */
  readonly durableTicket: number;
  /** Commits failed in a row, 0 when the last one worked (a health signal: the buffer is not draining). */
  readonly failingCommits: number;
  readonly pending: number;
  /** Commits the buffer, then seals every head sample older than sealLagMs (normally the maintenance timer's job). */
  seal(): void;
  enforceRetention(): RetentionResult;
  counters(): StoreCounters;
  /** The underlying connection, for diagnostics (integrity checks, sizes). */
  readonly db: Db;
}

function readerOf(db: Db): Omit<StoreReader, 'close'> {
  const r = new Reader(db);
  return {
    range: (k, f, t, o) => r.range(k, f, t, o),
    chunkStats: (k, f, t) => r.chunkStats(k, f, t),
    listSeries: () => r.listSeries(),
    lateLogHead: () => r.lateLogHead(),
    lateLog: (after, limit) => r.lateLog(after, limit),
    info: () => r.info(),
    rawTimestamps: (k) => r.rawTimestamps(k),
  };
}

/**
 * A read-only view of a store that another process writes: the one way the Aggregator, Analytics,
 * ML, the HMI and `dcmms-edge query` read it (SQLite read-only connection, WAL). What it needs from
 * the file system is in docs/store.md "Files, owners and permissions".
 */
export function openStoreReader(path: string, opts: StoreReaderOptions = {}): StoreReader {
  const db = openDatabase(path, { readOnly: true, ...(opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {}) });
  let closed = false;
  return {
    ...readerOf(db),
    close: () => {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}

/** Opens (creating if needed) the store for writing. One writer per file. */
export function openStore(deps: StoreDeps, config: Partial<StoreConfig> = {}): Store {
  const cfg = validateStoreConfig(config);
  const clock = deps.clock ?? systemClock;
  const log = (deps.logger ?? silentLogger).child({ module: 'store' });
  const db = openDatabase(deps.path, { synchronous: cfg.synchronous, cacheBytes: cfg.cacheBytes, ...(deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}) });
  // The mode is set after the open created the file and its -wal/-shm (journal_mode = WAL), and
  // again at each open, so readers in the group can always read it (docs/store.md).
  const modeProblems = applyFileMode(deps.path, deps.fileMode ?? STORE_FILE_MODE);
  if (modeProblems.length) log.warn('store file mode not set', { problems: modeProblems });
  const counters: StoreCounters = { appended: 0, committed: 0, duplicates: 0, rejected: {}, commits: 0, commitErrors: 0, sealedSamples: 0, lateSamples: 0, chunksWritten: 0, retentionDeletedChunks: 0, reclaimedPages: 0, lateLogged: 0, lateLogRows: 0, lateLogPruned: 0 };
  // Readers compare their close delay with it (docs/store.md "Readers").
  db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('lateAfterMs', ?)").run(String(cfg.lateAfterMs));
  // Errors that repeat while a disk is full or the file is read-only: one line per 10 s each.
  const limited = createLogLimiter(clock, 10_000);
  const writer = new HeadWriter(db, clock, log, counters, { commitWindowMs: cfg.commitWindowMs, maxBatchSamples: cfg.maxBatchSamples, commitRetryMaxMs: cfg.commitRetryMaxMs, lateAfterMs: cfg.lateAfterMs }, limited);
  const sealer = new Sealer(db, counters, { sealLagMs: cfg.sealLagMs, chunkSamples: cfg.chunkSamples, chunkMaxSpanMs: cfg.chunkMaxSpanMs, sliceSeries: cfg.sealSliceSeries, sliceRows: cfg.sealSliceRows });
  const retention = new Retention(db, deps.path, counters, { retentionMs: cfg.retentionMs, maxBytes: cfg.maxBytes, minFreeBytes: cfg.minFreeBytes }, deps.freeSpace ?? statfsFreeSpace);
  const reclaimer = new Reclaimer(db, counters, { pagesPerStep: cfg.reclaimPagesPerStep });
  let closed = false;
  let timer: TimerHandle | undefined;
  let lastSeal = clock.now();
  let lastRetention = -Infinity;
  const freePages = (): number => db.pragma('freelist_count', { simple: true }) as number;

  const retain = (): RetentionResult => {
    const r = retention.run(clock.now());
    if (r.diskFull !== writer.diskFull) log.warn(r.diskFull ? 'disk below its free-space floor with nothing left to delete: refusing samples' : 'disk space back: taking samples again', { freeBytes: r.freeBytes });
    writer.diskFull = r.diskFull;
    if (r.deletedChunks > 0) log.info('retention deleted chunks', { deletedChunks: r.deletedChunks, usedBytes: r.usedBytes, freeBytes: r.freeBytes });
    if (r.deletedChunks > 0 || r.deletedHeadRows > 0) reclaimer.request();
    return r;
  };

  // A seal run's pages freed (head rows deleted, net of the chunks written) size the reserve.
  let freeAtRunStart = 0;
  const sealStep = (now: number): boolean => {
    if (!sealer.busy) freeAtRunStart = freePages();
    const runs = sealer.runsCompleted;
    const more = sealer.step(now);
    if (sealer.runsCompleted > runs) reclaimer.afterRun(freePages() - freeAtRunStart);
    return more;
  };

  // One maintenance timer: a seal run goes one slice per tick (1 ms apart, so commits and the
  // Processor's own work interleave), then the pages it freed go back to the file system one
  // bounded step per tick; retention runs between those.
  const tick = (): void => {
    timer = undefined;
    if (closed) return;
    let more = false;
    try {
      const now = clock.now();
      if (sealer.busy || now - lastSeal >= cfg.sealIntervalMs) {
        if (!sealer.busy) lastSeal = now;
        more = sealStep(now);
      } else if (reclaimer.busy) {
        more = reclaimer.step();
      } else if (now - lastRetention >= cfg.retentionIntervalMs) {
        lastRetention = now;
        retain();
        more = reclaimer.busy;
      }
    } catch (e) {
      // A seal fails for the same reasons a commit does (disk full); its next try is a tick away.
      limited('maintenance_failed', (suppressed) => log.error('store maintenance failed', { err: e, error: errorMessage(e), suppressed }));
    }
    timer = clock.setTimeout(tick, more ? 1 : Math.min(1000, cfg.sealIntervalMs, cfg.retentionIntervalMs));
  };
  timer = clock.setTimeout(tick, 0);

  return {
    ...readerOf(db),
    db,
    append: (s) => writer.append(s).ticket,
    tryAppend: (s) => writer.append(s),
    flush: () => writer.flush(),
    onCommit: (fn) => writer.onCommit(fn),
    get durableTicket() {
      return writer.durableTicket;
    },
    get pending() {
      return writer.pending;
    },
    get failingCommits() {
      return writer.failingCommits;
    },
    seal: () => {
      writer.flush();
      const now = clock.now();
      // Finish a run under way (its bucket list is older), then run once over everything.
      if (sealer.busy) while (sealStep(now));
      while (sealStep(now));
      reclaimer.finish();
    },
    enforceRetention: () => {
      const r = retain();
      reclaimer.finish();
      return r;
    },
    counters: () => ({ ...counters, rejected: { ...counters.rejected } }),
    close: () => {
      if (closed) return;
      closed = true;
      clock.clearTimeout(timer);
      writer.stop();
      try {
        writer.flush();
      } finally {
        db.close();
      }
    },
  };
}
