/**
 * The Aggregator's own SQLite file (WAL, synchronous=FULL): rollups, progress watermarks and the
 * publish outbox. Rows and the watermark that covers them are written in one transaction, so a
 * crash leaves either both or neither: after a restart there is no gap (the watermark did not move)
 * and no double (rows are keyed (bucket start, series) and upserted). docs/aggregator.md.
 *
 *   meta     schemaVersion; storeId (the Processor store file whose late-log ids `progress` counts)
 *   series   our ids for (asset, point), with the unit the store's series list gives
 *   r1m/r15m/r1d  (start, sid) -> Roll + rev; time-major keys so each close appends at the end
 *   days     closed local days (start, end, name, summary revision)
 *   progress level -> closed until (exclusive); 'origin' (first watermark); 'lateLog' (last store
 *            late-log id re-aggregated, written with the re-aggregation)
 *   outbox   (level, start, asset) still to publish; deleted once the bus took the message
 */
import Database from 'better-sqlite3';
import { FatalError, ErrorCode } from '../lib/errors';
import { applyFileMode, Reclaimer, STORE_FILE_MODE } from '../lib/store';
import { rollsEqual, type Roll } from './rollup';

export type Level = '1m' | '15m' | '1d';
export const LEVELS: readonly Level[] = ['1m', '15m', '1d'];
/** The daily summary's outbox level (asset ''). */
export const SUMMARY = 'summary';
export type OutboxLevel = Level | typeof SUMMARY;

const SCHEMA_VERSION = '1';

const rollCols = 'n INTEGER NOT NULL, count INTEGER NOT NULL, min REAL, max REAL, sum REAL NOT NULL, m2 REAL NOT NULL, first REAL, last REAL, energy REAL NOT NULL, rev INTEGER NOT NULL';
const DDL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, asset TEXT NOT NULL, point TEXT NOT NULL, unit TEXT, UNIQUE (asset, point));
CREATE TABLE IF NOT EXISTS r1m (start INTEGER NOT NULL, sid INTEGER NOT NULL, ${rollCols}, PRIMARY KEY (start, sid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS r15m (start INTEGER NOT NULL, sid INTEGER NOT NULL, ${rollCols}, PRIMARY KEY (start, sid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS r1d (start INTEGER NOT NULL, sid INTEGER NOT NULL, ${rollCols}, PRIMARY KEY (start, sid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS days (start INTEGER PRIMARY KEY, end INTEGER NOT NULL, day TEXT NOT NULL, rev INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS progress (level TEXT PRIMARY KEY, until INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (level TEXT NOT NULL, start INTEGER NOT NULL, asset TEXT NOT NULL, PRIMARY KEY (level, start, asset)) WITHOUT ROWID;
`;

export interface SeriesRow {
  id: number;
  asset: string;
  point: string;
  unit: string | null;
}

export interface RollRow extends Roll {
  start: number;
  sid: number;
  rev: number;
}

export type UpsertResult = 'new' | 'changed' | 'same' | 'kept';

/** Pages one reclaim step gives back (4 MiB): bounds how long a step holds the event loop. */
export const RECLAIM_PAGES_PER_STEP = 1024;

export class AggDb {
  readonly db: Database.Database;
  /** Files whose mode could not be set (another owner): logged by the Aggregator. */
  readonly fileModeProblems: string[];
  /** Gives pages freed by retention back to the file system, in bounded steps (components/lib/store reclaim.ts). */
  readonly reclaimer: Reclaimer;
  readonly counters = { reclaimedPages: 0 };
  private readonly st;
  private readonly bySeries = new Map<string, SeriesRow>();
  private readonly byId = new Map<number, SeriesRow>();
  /** One transaction wrapper for every `tx` (better-sqlite3 builds four functions per `transaction()` call). */
  private readonly runTx: (fn: () => unknown) => unknown;

  constructor(file: string, nativeBinding?: string) {
    this.db = new Database(file, nativeBinding ? { nativeBinding } : {});
    // auto_vacuum only takes effect before the first table exists: a new file gets INCREMENTAL, so
    // pages freed by retention can go back to the file system. A file made before keeps NONE (its
    // free pages are reused by new rows; converting it takes a full VACUUM, not done here).
    const fresh = (this.db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n === 0;
    if (fresh) this.db.pragma('auto_vacuum = INCREMENTAL');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(DDL);
    // Owner reads and writes, its group reads (a later reader such as the HMI), others nothing:
    // the same modes as the raw store, whatever the umask (docs/store.md "Files, owners and permissions").
    this.fileModeProblems = applyFileMode(file, STORE_FILE_MODE);
    const v = this.db.prepare("SELECT value FROM meta WHERE key = 'schemaVersion'").pluck().get() as string | undefined;
    if (v === undefined) this.db.prepare("INSERT INTO meta (key, value) VALUES ('schemaVersion', ?)").run(SCHEMA_VERSION);
    else if (v !== SCHEMA_VERSION) throw new FatalError(ErrorCode.INVARIANT, `${file} has aggregator schema ${v}, this build reads ${SCHEMA_VERSION}`);
    const roll = (t: string) => ({
      get: this.db.prepare(`SELECT * FROM ${t} WHERE start = ? AND sid = ?`),
      put: this.db.prepare(`INSERT OR REPLACE INTO ${t} (start, sid, n, count, min, max, sum, m2, first, last, energy, rev) VALUES (@start, @sid, @n, @count, @min, @max, @sum, @m2, @first, @last, @energy, @rev)`),
      range: this.db.prepare(`SELECT * FROM ${t} WHERE start >= ? AND start < ? ORDER BY sid, start`),
      rangeSid: this.db.prepare(`SELECT * FROM ${t} WHERE start >= ? AND start < ? AND sid = ? ORDER BY start`),
      at: this.db.prepare(`SELECT * FROM ${t} WHERE start = ?`),
      nBySid: this.db.prepare(`SELECT sid, sum(n) AS n FROM ${t} WHERE start >= ? AND start < ? GROUP BY sid`),
      prune: this.db.prepare(`DELETE FROM ${t} WHERE start < ?`),
    });
    this.st = {
      r1m: roll('r1m'),
      r15m: roll('r15m'),
      r1d: roll('r1d'),
      seriesAll: this.db.prepare('SELECT id, asset, point, unit FROM series'),
      seriesAdd: this.db.prepare('INSERT INTO series (asset, point, unit) VALUES (?, ?, ?)'),
      seriesUnit: this.db.prepare('UPDATE series SET unit = ? WHERE id = ?'),
      progressGet: this.db.prepare('SELECT until FROM progress WHERE level = ?').pluck(),
      progressPut: this.db.prepare('INSERT OR REPLACE INTO progress (level, until) VALUES (?, ?)'),
      outboxAdd: this.db.prepare('INSERT OR IGNORE INTO outbox (level, start, asset) VALUES (?, ?, ?)'),
      outboxList: this.db.prepare('SELECT level, start, asset FROM outbox ORDER BY start, level, asset LIMIT ?'),
      outboxDel: this.db.prepare('DELETE FROM outbox WHERE level = ? AND start = ? AND asset = ?'),
      outboxCount: this.db.prepare('SELECT count(*) FROM outbox').pluck(),
      dayGet: this.db.prepare('SELECT start, end, day, rev FROM days WHERE start = ?'),
      dayPut: this.db.prepare('INSERT OR REPLACE INTO days (start, end, day, rev) VALUES (?, ?, ?, ?)'),
      dayPrune: this.db.prepare('DELETE FROM days WHERE start < ?'),
      metaGet: this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
      freePages: this.db.prepare('PRAGMA freelist_count').pluck(),
      metaPut: this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
    };
    for (const s of this.st.seriesAll.all() as SeriesRow[]) this.remember(s);
    this.runTx = this.db.transaction((fn: () => unknown) => fn());
    this.reclaimer = new Reclaimer(this.db, this.counters, { pagesPerStep: RECLAIM_PAGES_PER_STEP });
  }

  private remember(s: SeriesRow): void {
    this.bySeries.set(key(s.asset, s.point), s);
    this.byId.set(s.id, s);
  }

  series(asset: string, point: string): SeriesRow {
    const k = key(asset, point);
    let s = this.bySeries.get(k);
    if (!s) {
      const id = Number(this.st.seriesAdd.run(asset, point, null).lastInsertRowid);
      s = { id, asset, point, unit: null };
      this.remember(s);
    }
    return s;
  }

  findSeries(asset: string, point: string): SeriesRow | undefined {
    return this.bySeries.get(key(asset, point));
  }

  allSeries(): SeriesRow[] {
    return [...this.bySeries.values()];
  }

  /** Series by id (the live map: do not change it). */
  seriesById(): ReadonlyMap<number, SeriesRow> {
    return this.byId;
  }

  setUnit(s: SeriesRow, unit: string): void {
    if (s.unit === unit) return;
    this.st.seriesUnit.run(unit, s.id);
    s.unit = unit;
  }

  meta(key: string): string | undefined {
    return this.st.metaGet.get(key) as string | undefined;
  }

  setMeta(key: string, value: string): void {
    this.st.metaPut.run(key, value);
  }

  progress(level: string): number | undefined {
    return this.st.progressGet.get(level) as number | undefined;
  }

  setProgress(level: string, until: number): void {
    this.st.progressPut.run(level, until);
  }

  /**
   * Writes a roll unless an equal one is there. A roll with fewer samples than the stored one is
   * not written ('kept'): the store lost samples (retention under disk pressure), the rollup keeps
   * what they were.
   */
  upsert(level: Level, start: number, sid: number, r: Roll): UpsertResult {
    const t = this.st[`r${level}`];
    const old = t.get.get(start, sid) as RollRow | undefined;
    if (old && rollsEqual(old, r)) return 'same';
    if (old && r.n < old.n) return 'kept';
    if (!old && r.n === 0) return 'same';
    t.put.run({ start, sid, ...r, rev: old ? old.rev + 1 : 0 });
    return old ? 'changed' : 'new';
  }

  rows(level: Level, from: number, to: number, sid?: number): RollRow[] {
    const t = this.st[`r${level}`];
    return (sid === undefined ? t.range.all(from, to) : t.rangeSid.all(from, to, sid)) as RollRow[];
  }

  rowsAt(level: Level, start: number): RollRow[] {
    return this.st[`r${level}`].at.all(start) as RollRow[];
  }

  samplesBySeries(level: Level, from: number, to: number): Map<number, number> {
    const out = new Map<number, number>();
    for (const r of this.st[`r${level}`].nBySid.all(from, to) as Array<{ sid: number; n: number }>) out.set(r.sid, r.n);
    return out;
  }

  prune(level: Level, before: number): number {
    return this.st[`r${level}`].prune.run(before).changes;
  }

  pruneDays(before: number): void {
    this.st.dayPrune.run(before);
  }

  outboxAdd(level: OutboxLevel, start: number, asset: string): void {
    this.st.outboxAdd.run(level, start, asset);
  }

  outbox(limit: number): Array<{ level: OutboxLevel; start: number; asset: string }> {
    return this.st.outboxList.all(limit) as Array<{ level: OutboxLevel; start: number; asset: string }>;
  }

  outboxDone(level: OutboxLevel, start: number, asset: string): void {
    this.st.outboxDel.run(level, start, asset);
  }

  outboxSize(): number {
    return this.st.outboxCount.get() as number;
  }

  day(start: number): { start: number; end: number; day: string; rev: number } | undefined {
    return this.st.dayGet.get(start) as { start: number; end: number; day: string; rev: number } | undefined;
  }

  putDay(start: number, end: number, day: string, rev: number): void {
    this.st.dayPut.run(start, end, day, rev);
  }

  tx<T>(fn: () => T): T {
    return this.runTx(fn) as T;
  }

  /** Pages on SQLite's free list. */
  freePages(): number {
    return this.st.freePages.get() as number;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function key(asset: string, point: string): string {
  return `${asset}\u0000${point}`;
}
