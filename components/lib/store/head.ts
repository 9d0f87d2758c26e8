/**
 * The write side of the head: `append` buffers samples in fixed-size typed arrays (bounded memory)
 * and a commit writes them to the head table in one transaction, at most `commitWindowMs` after
 * the oldest buffered sample arrived. Pub/sub has no redelivery, so what a crash can lose is
 * exactly what sits in this buffer: at most one window (docs/store.md "Durability").
 *
 * A failed commit (SQLITE_FULL, an I/O error, a read-only file) keeps the buffer and is retried
 * with exponential backoff from the commit window up to `commitRetryMaxMs`, not on every append:
 * each try is a transaction that writes and rolls back the whole buffer, so retrying at append
 * rate would burn the CPU the Processor needs and flood the log. While it backs off, a full
 * buffer refuses new samples (`store_unavailable`); the first commit that works ends it.
 *
 * Late data (docs/store.md "Readers"): a commit writes, in its own transaction, one
 * late-log row per asset and stretch of time for the new samples older than `lateAfterMs` at the
 * commit's start. A sample that was not late then but is by the commit's end (a slow fsync) is
 * logged right after, so a reader closing a minute `lateAfterMs` after its end either saw a sample
 * or finds it in the log. Units (`StoreSample.u`) go to `series.unit` in the same transaction.
 */
import { backoffDelay } from '../backoff';
import type { Clock, TimerHandle } from '../clock';
import { errorMessage } from '../errors';
import type { LimitedLog } from '../log-limit';
import type { Logger } from '../logger';
import { QUALITY_CODE } from './chunk';
import { MAX_TS } from './gorilla';
import { bucketOf, type Db } from './schema';
import type { AppendResult, CommitInfo, StoreCounters, StoreSample } from './types';

export interface HeadWriterOptions {
  commitWindowMs: number;
  maxBatchSamples: number;
  /** Longest wait between two tries of a failing commit. */
  commitRetryMaxMs: number;
  /** A new sample older than this when its commit starts (or ends) goes to the late log. */
  lateAfterMs: number;
}

const MAX_NAME = 256;
const MAX_UNIT = 64;
/** Late samples of one asset further apart than this make separate late-log rows. */
export const LATE_GAP_MS = 60_000;

interface LateRow {
  asset: string;
  from: number;
  to: number;
  samples: number;
}

/** A buffered sample after its commit: a duplicate, new and on time, or new and logged late. */
const DUPLICATE = 0;
const ON_TIME = 1;
const LOGGED_LATE = 2;
const NO_REJECTIONS: Readonly<Record<string, number>> = Object.freeze({});

export class HeadWriter {
  private readonly series = new Map<string, Map<string, number>>();
  /** By series id. */
  private readonly assetOf: string[] = [];
  private readonly unitOf: Array<string | undefined> = [];
  private nextSeriesId = 1;
  private newSeries: Array<[number, string, string]> = [];
  /** Units to write with the next commit, by series id. */
  private readonly unitChanges = new Map<number, string>();
  /** What the last commit did with each buffered sample (DUPLICATE, ON_TIME, LOGGED_LATE). */
  private readonly fate: Uint8Array;
  /** Newest late-log id committed. */
  private lateHead = 0;
  /** Late-log rows whose own transaction failed: written with the next commit. */
  private pendingLate: Array<LateRow & { at: number }> = [];
  /** Set by the commit transaction for the code after it. */
  private txLate = { head: 0, samples: 0, rows: 0, oldestOnTime: Infinity };
  private readonly sid: Int32Array;
  private readonly ts: Float64Array;
  private readonly v: Float64Array;
  private readonly vNull: Uint8Array;
  private readonly q: Uint8Array;
  private n = 0;
  private firstArrival = 0;
  private timer: TimerHandle | undefined;
  private ticket = 0;
  private committedTicket = 0;
  /** True while `append` copies samples: its ticket is not complete until it returns. */
  private appending = false;
  /** Rejections of the append in progress, by reason (allocated on the first one). */
  private appendRejected: Record<string, number> | undefined;
  /** Samples refused by completed appends since the last commit told to listeners. */
  private rejectedSinceReport = 0;
  /** Commits failed in a row; 0 when the last one worked. */
  private failures = 0;
  /** While commits fail: no commit is tried before this time except an explicit `flush()`. */
  private retryAt = 0;
  private readonly listeners = new Set<(c: CommitInfo) => void>();
  private readonly insertHead;
  private readonly insertSeries;
  private readonly updateUnit;
  private readonly insertLate;
  private readonly commitTx;
  private readonly lateTx;
  /** Set by retention when the disk is below its floor and nothing is left to delete. */
  diskFull = false;

  constructor(
    db: Db,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly counters: StoreCounters,
    private readonly opts: HeadWriterOptions,
    private readonly limited: LimitedLog,
  ) {
    const cap = opts.maxBatchSamples;
    this.sid = new Int32Array(cap);
    this.ts = new Float64Array(cap);
    this.v = new Float64Array(cap);
    this.vNull = new Uint8Array(cap);
    this.q = new Uint8Array(cap);
    this.fate = new Uint8Array(cap);
    for (const row of db.prepare('SELECT id, asset, point, unit FROM series').iterate() as Iterable<{ id: number; asset: string; point: string; unit: string | null }>) {
      this.remember(row.asset, row.point, row.id);
      if (row.unit !== null) this.unitOf[row.id] = row.unit;
    }
    this.lateHead = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'late_log'").pluck().get() as number | undefined) ?? 0;
    this.insertHead = db.prepare('INSERT OR IGNORE INTO head (bucket, series, ts, v, q) VALUES (?, ?, ?, ?, ?)');
    this.insertSeries = db.prepare('INSERT INTO series (id, asset, point) VALUES (?, ?, ?)');
    this.updateUnit = db.prepare('UPDATE series SET unit = ? WHERE id = ?');
    this.insertLate = db.prepare('INSERT INTO late_log (committed_at, asset, from_ts, to_ts, samples) VALUES (?, ?, ?, ?, ?)');
    this.commitTx = db.transaction((count: number, now: number): number => {
      for (const [id, asset, point] of this.newSeries) this.insertSeries.run(id, asset, point);
      for (const [id, unit] of this.unitChanges) this.updateUnit.run(unit, id);
      let head = this.lateHead;
      let rows = 0;
      for (const r of this.pendingLate) {
        head = this.logLate(r, r.at);
        rows++;
      }
      const lateBefore = now - this.opts.lateAfterMs;
      let late: Map<string, number[]> | undefined;
      let lateSamples = 0;
      let oldestOnTime = Infinity;
      let inserted = 0;
      for (let i = 0; i < count; i++) {
        const t = this.ts[i] as number;
        const sid = this.sid[i] as number;
        const changes = this.insertHead.run(bucketOf(t), sid, t, this.vNull[i] ? null : this.v[i], this.q[i]).changes;
        inserted += changes;
        if (changes === 0) {
          this.fate[i] = DUPLICATE;
        } else if (t < lateBefore) {
          this.fate[i] = LOGGED_LATE;
          lateSamples++;
          late ??= new Map();
          const asset = this.assetOf[sid] as string;
          const list = late.get(asset);
          if (list) list.push(t);
          else late.set(asset, [t]);
        } else {
          this.fate[i] = ON_TIME;
          if (t < oldestOnTime) oldestOnTime = t;
        }
      }
      if (late) {
        for (const r of stretches(late)) {
          head = this.logLate(r, now);
          rows++;
        }
      }
      this.txLate = { head, samples: lateSamples, rows, oldestOnTime };
      return inserted;
    });
    this.lateTx = db.transaction((rows: readonly LateRow[], at: number): number => {
      let head = this.lateHead;
      for (const r of rows) head = this.logLate(r, at);
      return head;
    });
  }

  private logLate(r: LateRow, at: number): number {
    return Number(this.insertLate.run(at, r.asset, r.from, r.to, r.samples).lastInsertRowid);
  }

  private remember(asset: string, point: string, id: number): void {
    let points = this.series.get(asset);
    if (!points) this.series.set(asset, (points = new Map()));
    points.set(point, id);
    this.assetOf[id] = asset;
    if (id >= this.nextSeriesId) this.nextSeriesId = id + 1;
  }

  /** Newest late-log id committed (0: none). */
  get lateLogId(): number {
    return this.lateHead;
  }

  /** The series id of (asset, point), if the writer knows it (it knows every stored series). */
  seriesId(asset: string, point: string): number | undefined {
    return this.series.get(asset)?.get(point);
  }

  private reject(reason: string): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
    const r = (this.appendRejected ??= {});
    r[reason] = (r[reason] ?? 0) + 1;
  }

  /**
   * Buffers samples; the ticket is reported by `onCommit` once every accepted sample is durable.
   * Refused samples (disk full, buffer full while commits fail, invalid) are counted by reason,
   * returned, and never stored. Invalid samples are a bug upstream: the Processor validates first.
   */
  append(samples: readonly StoreSample[]): AppendResult {
    const ticket = ++this.ticket;
    const before = this.counters.appended;
    this.appending = true;
    this.appendRejected = undefined;
    try {
      this.copy(samples);
    } finally {
      this.appending = false;
    }
    const reasons = this.appendRejected ?? NO_REJECTIONS;
    this.appendRejected = undefined;
    const accepted = this.counters.appended - before;
    const rejected = samples.length - accepted;
    this.rejectedSinceReport += rejected;
    if (this.n > 0) this.schedule();
    return { ticket, accepted, rejected, reasons };
  }

  private copy(samples: readonly StoreSample[]): void {
    for (const s of samples) {
      if (this.diskFull) {
        this.reject('disk_full');
        continue;
      }
      const { ts, v } = s;
      if (!Number.isInteger(ts) || ts < 0 || ts >= MAX_TS) {
        this.reject('bad_timestamp');
        continue;
      }
      if (v !== null && (typeof v !== 'number' || !Number.isFinite(v))) {
        this.reject('non_finite_value');
        continue;
      }
      const qc = QUALITY_CODE[s.q];
      if (qc === undefined) {
        this.reject('bad_quality');
        continue;
      }
      let id = this.series.get(s.assetId)?.get(s.point);
      if (id === undefined) {
        if (typeof s.assetId !== 'string' || typeof s.point !== 'string' || !s.assetId || !s.point || s.assetId.length > MAX_NAME || s.point.length > MAX_NAME) {
          this.reject('bad_series_key');
          continue;
        }
        id = this.nextSeriesId;
        this.remember(s.assetId, s.point, id);
        this.newSeries.push([id, s.assetId, s.point]);
      }
      const u = s.u;
      if (u !== undefined && u !== this.unitOf[id] && typeof u === 'string' && u.length <= MAX_UNIT) {
        this.unitOf[id] = u;
        this.unitChanges.set(id, u);
      }
      if (this.n >= this.sid.length && this.mayCommit()) this.flush();
      if (this.n >= this.sid.length) {
        // Commits fail and the buffer is full: refuse rather than grow without bound.
        this.reject('store_unavailable');
        continue;
      }
      const i = this.n++;
      this.sid[i] = id;
      this.ts[i] = ts;
      this.v[i] = v ?? 0;
      this.vNull[i] = v === null ? 1 : 0;
      this.q[i] = qc;
      this.counters.appended += 1;
    }
  }

  /**
   * The highest ticket whose samples are all in the buffer: a commit forced by a full buffer in
   * the middle of an append holds only part of that append, so it reports the one before.
   */
  private get completeTicket(): number {
    return this.appending ? this.ticket - 1 : this.ticket;
  }

  private schedule(): void {
    const now = this.clock.now();
    if (this.timer === undefined) {
      this.firstArrival = now;
      // Fire at 80 % of the window so the transaction (with its fsync) ends within the window.
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, Math.max(1, Math.floor(this.opts.commitWindowMs * 0.8)));
    } else if (now - this.firstArrival >= this.opts.commitWindowMs * 0.8 && this.mayCommit()) {
      // A busy event loop delays timers; appends still arriving enforce the window themselves.
      this.flush();
    }
  }

  /** False while a failed commit backs off (an append must not retry it). */
  private mayCommit(): boolean {
    return this.failures === 0 || this.clock.now() >= this.retryAt;
  }

  /** Commits failed in a row (0 when the last commit worked). */
  get failingCommits(): number {
    return this.failures;
  }

  /** Samples buffered and not yet committed. */
  get pending(): number {
    return this.n;
  }

  get lastTicket(): number {
    return this.ticket;
  }

  get durableTicket(): number {
    return this.committedTicket;
  }

  onCommit(fn: (c: CommitInfo) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Commits everything buffered now. Returns the commit, or undefined if there was nothing or it failed. */
  flush(): CommitInfo | undefined {
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.n === 0 && this.newSeries.length === 0 && this.unitChanges.size === 0 && this.pendingLate.length === 0) {
      this.committedTicket = this.completeTicket;
      return undefined;
    }
    const count = this.n;
    const ticket = this.completeTicket;
    const start = this.clock.now();
    const t0 = performance.now();
    let inserted: number;
    try {
      inserted = this.commitTx(count, start);
    } catch (e) {
      // SQLITE_FULL, I/O errors, a locked file: keep the buffer, retry after a growing delay.
      this.failures += 1;
      this.counters.commitErrors += 1;
      const delay = backoffDelay(this.failures, { initialMs: this.opts.commitWindowMs, maxMs: Math.max(this.opts.commitWindowMs, this.opts.commitRetryMaxMs) });
      this.retryAt = this.clock.now() + delay;
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, delay);
      const failures = this.failures;
      const commitErrors = this.counters.commitErrors;
      this.limited('commit_failed', (suppressed) =>
        this.log.error('store commit failed; samples kept in memory, retrying with backoff', { err: e, error: errorMessage(e), pending: count, failures, commitErrors, retryInMs: delay, suppressed }),
      );
      return undefined;
    }
    const durationMs = performance.now() - t0;
    if (this.failures > 0) {
      this.log.warn('store commits recovered', { failures: this.failures, samples: count });
      this.failures = 0;
      this.retryAt = 0;
    }
    this.newSeries = [];
    this.unitChanges.clear();
    this.pendingLate = [];
    const late = this.txLate;
    this.lateHead = late.head;
    this.counters.lateLogged += late.samples;
    this.counters.lateLogRows += late.rows;
    const lateSamples = late.samples + this.logTurnedLate(count, late.oldestOnTime);
    this.n = 0;
    this.committedTicket = ticket;
    this.counters.commits += 1;
    this.counters.committed += inserted;
    this.counters.duplicates += count - inserted;
    const info: CommitInfo = { ticket, samples: count, inserted, duplicates: count - inserted, rejected: this.rejectedSinceReport, waitMs: start - this.firstArrival, durationMs, lateSamples, lateLogId: this.lateHead };
    this.rejectedSinceReport = 0;
    for (const fn of this.listeners) {
      try {
        fn(info);
      } catch (e) {
        this.log.error('store onCommit listener threw', { err: e });
      }
    }
    return info;
  }

  /**
   * The commit's on-time samples that are late by its end (its fsync took long, or they were at
   * the edge): a reader may have read between the commit's start and end without seeing them, so
   * they are logged now, in their own transaction. If that fails, the rows go with the next commit
   * (a timer makes sure there is one). Returns the samples logged (0 or the rows' samples if written).
   */
  private logTurnedLate(count: number, oldestOnTime: number): number {
    const end = this.clock.now();
    const lateBefore = end - this.opts.lateAfterMs;
    if (!(oldestOnTime < lateBefore)) return 0;
    const late = new Map<string, number[]>();
    let samples = 0;
    for (let i = 0; i < count; i++) {
      const t = this.ts[i] as number;
      if (this.fate[i] !== ON_TIME || t >= lateBefore) continue;
      samples++;
      const asset = this.assetOf[this.sid[i] as number] as string;
      const list = late.get(asset);
      if (list) list.push(t);
      else late.set(asset, [t]);
    }
    const rows = stretches(late);
    try {
      this.lateHead = this.lateTx(rows, end);
      this.counters.lateLogged += samples;
      this.counters.lateLogRows += rows.length;
      return samples;
    } catch (e) {
      this.pendingLate.push(...rows.map((r) => ({ ...r, at: end })));
      this.timer ??= this.clock.setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.opts.commitWindowMs);
      this.limited('late_log_failed', (suppressed) => this.log.error('store late log not written; retried with the next commit', { err: e, error: errorMessage(e), rows: rows.length, suppressed }));
      return 0;
    }
  }

  /** Stops the timer; the caller flushes first if it wants the buffer. */
  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Late sample times per asset -> rows, one per stretch whose samples are at most LATE_GAP_MS apart. */
function stretches(byAsset: ReadonlyMap<string, number[]>): LateRow[] {
  const out: LateRow[] = [];
  for (const [asset, ts] of byAsset) {
    ts.sort((a, b) => a - b);
    let from = ts[0] as number;
    let to = from;
    let samples = 0;
    for (const t of ts) {
      if (t - to > LATE_GAP_MS) {
        out.push({ asset, from, to, samples });
        from = t;
        samples = 0;
      }
      to = t;
      samples++;
    }
    out.push({ asset, from, to, samples });
  }
  return out;
}
