/**
 * The store's SQLite schema and connection setup.
 *
 *  series  (assetId, point) -> integer id; ids are assigned by the one writer.
 *  head    recent raw samples, keyed (bucket, series, ts) WITHOUT ROWID, bucket = floor(ts / 1 s).
 *          Time-major on purpose: a commit of 2 500 samples of 2 500 series dirties a handful of
 *          pages at the end of the tree instead of one page per series (WAL bytes per commit are
 *          what an eMMC gateway pays for). A reader finds one series by seeking (bucket, series)
 *          in each bucket, which is cheap because the head holds about a minute.
 *  chunk   sealed, compressed samples of one series (chunk.ts) with their statistics. Chunks of a
 *          series never overlap in time, so ordering them by max_ts orders them by min_ts.
 *  late_log  one row per asset and stretch of time of samples committed more than lateAfterMs
 *          after their time, written in the transaction that stored them (head.ts): how readers
 *          learn of late data without scanning (docs/store.md "Readers").
 *
 * Additions since schemaVersion 1 (series.unit, late_log, meta storeId and lateAfterMs) are made
 * by the writer in place (`migrate`) and are invisible to an older reader or writer, which names
 * its columns: schemaVersion stays 1, so a file touched by this build still opens with the last.
 *
 * Durability: WAL with synchronous=FULL, i.e. the WAL is fsynced at every commit, so a committed
 * sample survives power loss, not just kill -9 (NORMAL survives kill -9 but may lose the last
 * commits on power loss). Commits are a few per second, so the fsync is affordable (docs/store.md).
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { FatalError, ErrorCode } from '../errors';

export const SCHEMA_VERSION = 1;
/** Width of a head bucket, ms. Fixed per database (stored in meta) so readers agree with the writer. */
export const HEAD_BUCKET_MS = 1000;

export type Db = Database.Database;
export type Synchronous = 'FULL' | 'NORMAL';

const DDL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
  id INTEGER PRIMARY KEY,
  asset TEXT NOT NULL,
  point TEXT NOT NULL,
  unit TEXT,
  UNIQUE (asset, point)
);
CREATE TABLE IF NOT EXISTS head (
  bucket INTEGER NOT NULL,
  series INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  v REAL,
  q INTEGER NOT NULL,
  PRIMARY KEY (bucket, series, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunk (
  id INTEGER PRIMARY KEY,
  series INTEGER NOT NULL,
  min_ts INTEGER NOT NULL,
  max_ts INTEGER NOT NULL,
  n INTEGER NOT NULL,
  count INTEGER NOT NULL,
  vmin REAL,
  vmax REAL,
  sum REAL NOT NULL,
  sumsq REAL NOT NULL,
  first REAL,
  last REAL,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunk_series_max ON chunk (series, max_ts);
CREATE INDEX IF NOT EXISTS chunk_age ON chunk (max_ts);
CREATE TABLE IF NOT EXISTS late_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  committed_at INTEGER NOT NULL,
  asset TEXT NOT NULL,
  from_ts INTEGER NOT NULL,
  to_ts INTEGER NOT NULL,
  samples INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS late_log_age ON late_log (committed_at);
`;

export interface OpenOptions {
  readOnly?: boolean;
  synchronous?: Synchronous;
  /** SQLite page cache, bytes (bounded memory). */
  cacheBytes?: number;
  /**
   * Path of better-sqlite3's native addon. A component bundled by esbuild has no node_modules to
   * find it in, so its main.ts passes the file shipped beside main.js (docs/build.md).
   */
  nativeBinding?: string;
}

export function openDatabase(file: string, opts: OpenOptions = {}): Db {
  if (opts.readOnly) {
    const db = new Database(file, { readonly: true, fileMustExist: true, ...(opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {}) });
    db.pragma('busy_timeout = 5000');
    checkMeta(db, file, false);
    return db;
  }
  const db = new Database(file, opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {});
  try {
    db.pragma('busy_timeout = 5000');
    // auto_vacuum only takes effect before the first table exists: set it on a new file so that
    // retention can hand freed pages back to the file system (incremental_vacuum).
    const fresh = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n === 0;
    if (fresh) db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    // The WAL is truncated back to this size after a checkpoint, so it cannot stay large.
    db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
    db.pragma(`cache_size = -${Math.max(1024, Math.floor((opts.cacheBytes ?? 32 * 1024 * 1024) / 1024))}`);
    db.exec(DDL);
    checkMeta(db, file, true);
    migrate(db);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

function checkMeta(db: Db, file: string, writable: boolean): void {
  const get = db.prepare('SELECT value FROM meta WHERE key = ?');
  const version = get.get('schemaVersion') as { value: string } | undefined;
  if (version === undefined) {
    if (!writable) throw new FatalError(ErrorCode.INVARIANT, `${file} is not an initialised dCMMS store`);
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    db.transaction(() => {
      put.run('schemaVersion', String(SCHEMA_VERSION));
      put.run('headBucketMs', String(HEAD_BUCKET_MS));
    })();
    return;
  }
  if (version.value !== String(SCHEMA_VERSION)) {
    throw new FatalError(ErrorCode.INVARIANT, `${file} has store schema ${version.value}, this build reads ${SCHEMA_VERSION}`);
  }
  const bucket = get.get('headBucketMs') as { value: string } | undefined;
  if (bucket?.value !== String(HEAD_BUCKET_MS)) throw new FatalError(ErrorCode.INVARIANT, `${file} has head buckets of ${bucket?.value} ms, expected ${HEAD_BUCKET_MS}`);
}

/** True if `table` has a column `column` (a file made by an older writer may lack it). */
export function hasColumn(db: Db, table: string, column: string): boolean {
  return db.prepare('SELECT 1 FROM pragma_table_info(?) WHERE name = ?').get(table, column) !== undefined;
}

export function hasTable(db: Db, table: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

/**
 * Brings a file made by an older writer up to this build, additively: ALTER TABLE ADD COLUMN and
 * new tables (DDL above) only, so an older reader, which names its columns, reads it as before.
 * `storeId` names this file: a reader that remembers late-log ids can tell a new file from the
 * same one (ids restart in a new file).
 */
function migrate(db: Db): void {
  if (!hasColumn(db, 'series', 'unit')) db.exec('ALTER TABLE series ADD COLUMN unit TEXT');
  db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('storeId', ?)").run(randomUUID());
}

export function bucketOf(ts: number): number {
  return Math.floor(ts / HEAD_BUCKET_MS);
}

/** Bytes the database pages hold (excluding free pages): what the byte budget limits. */
export function usedBytes(db: Db): number {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  const free = db.pragma('freelist_count', { simple: true }) as number;
  return (pages - free) * pageSize;
}
