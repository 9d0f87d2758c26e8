/**
 * What the store tells its readers besides samples (docs/store.md "Readers"): the
 * late log, written by the writer in the transaction that stored the late samples; units in
 * `series.unit`; the file's identity; and the migration of a file made by the previous build,
 * which an older reader still reads.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { openStore, openStoreReader, type LateLogEntry, type Store, type StoreConfig, type StoreSample } from '../../components/lib/store';

const T = Date.UTC(2026, 10, 26, 12);
const S = 1000;

let dir: string;
let clock: FakeClock;
const open: Array<{ close(): void }> = [];

function mk(config: Partial<StoreConfig> = {}): Store {
  const s = openStore({ path: path.join(dir, 'raw.db'), clock }, { sealIntervalMs: 3600_000, ...config });
  open.push(s);
  return s;
}

const at = (assetId: string, ts: number, point = 'W', u?: string): StoreSample => ({ assetId, point, ts, v: 1, q: 'good', ...(u ? { u } : {}) });
const rows = (l: LateLogEntry[]): Array<[string, number, number, number]> => l.map((e) => [e.assetId, e.from - T, e.to - T, e.samples]);

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-late-'));
  clock = new FakeClock(T);
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('late log', () => {
  test('a commit logs one row per asset and stretch of new samples older than lateAfterMs; on-time samples and duplicates are not logged', () => {
    const s = mk();
    s.append([at('inv-1', T - 2 * S), at('inv-1', T - 20 * S), at('inv-1', T - 19 * S, 'VA'), at('inv-1', T - 300 * S), at('inv-2', T - 30 * S), at('inv-2', T - 10 * S)]);
    const c = s.flush();
    // T - 10 s is not older than lateAfterMs (10 s): on time. inv-1's -300 s and -20 s are more than a minute apart.
    expect(c?.lateSamples).toBe(4);
    expect(c?.lateLogId).toBe(3);
    const r = openStoreReader(path.join(dir, 'raw.db'));
    open.push(r);
    expect(r.lateLogHead()).toBe(3);
    expect(rows(r.lateLog(0)).sort()).toEqual([['inv-1', -300 * S, -300 * S, 1], ['inv-1', -20 * S, -19 * S, 2], ['inv-2', -30 * S, -30 * S, 1]].sort());
    expect(r.lateLog(0).every((e) => e.committedAt === T)).toBe(true);
    expect(r.lateLog(2).map((e) => e.id)).toEqual([3]);
    expect(r.lateLog(0, 1).map((e) => e.id)).toEqual([1]);
    // The same late samples again: duplicates change nothing, so nothing is logged.
    s.append([at('inv-1', T - 20 * S), at('inv-2', T - 30 * S)]);
    const again = s.flush();
    expect(again?.duplicates).toBe(2);
    expect(again?.lateSamples).toBe(0);
    expect(again?.lateLogId).toBe(3);
    expect(s.counters()).toMatchObject({ lateLogged: 4, lateLogRows: 3 });
  });

  test('the rows are part of the commit: a failed commit logs nothing, its successful retry logs them once', () => {
    const s = mk();
    s.db.pragma('query_only = 1');
    s.append([at('inv-1', T - 60 * S)]);
    expect(s.flush()).toBeUndefined();
    expect(s.lateLog(0)).toEqual([]);
    s.db.pragma('query_only = 0');
    const c = s.flush();
    expect(c?.lateLogId).toBe(1);
    expect(rows(s.lateLog(0))).toEqual([['inv-1', -60 * S, -60 * S, 1]]);
    s.flush();
    expect(s.lateLogHead()).toBe(1);
  });

  test('a sample that becomes late while its commit runs (a slow fsync) is logged right after the commit', () => {
    const s = mk();
    s.append([at('inv-1', T - 8 * S), at('inv-1', T - 1 * S)]);
    // The commit reads the clock at its start (T) and after its transaction (T + 15 s).
    const real = clock.now.bind(clock);
    let calls = 0;
    clock.now = () => real() + (calls++ === 0 ? 0 : 15 * S);
    const c = s.flush();
    clock.now = real;
    // Both were on time at the start; at the end T - 8 s and T - 1 s are older than T + 15 s - 10 s.
    expect(c?.lateSamples).toBe(2);
    expect(c?.lateLogId).toBe(1);
    expect(s.lateLog(0)).toEqual([{ id: 1, committedAt: T + 15 * S, assetId: 'inv-1', from: T - 8 * S, to: T - 1 * S, samples: 2 }]);
  });

  test('retention prunes old entries by age; ids go on (a reader that kept an id never sees one again)', () => {
    const s = mk({ retentionMs: 3600_000 });
    s.append([at('inv-1', T - 60 * S)]);
    s.flush();
    clock.advance(2 * 3600_000); // the maintenance timer's retention runs meanwhile
    s.enforceRetention();
    expect(s.counters().lateLogPruned).toBe(1);
    expect(s.lateLog(0)).toEqual([]);
    expect(s.lateLogHead()).toBe(1);
    s.append([at('inv-1', clock.now() - 60 * S)]);
    expect(s.flush()?.lateLogId).toBe(2);
    s.close();
    expect(mk().lateLogHead()).toBe(2);
  });

  test('the writer records lateAfterMs and an id for the file; readers read both', () => {
    mk({ lateAfterMs: 7000 }).close();
    const r = openStoreReader(path.join(dir, 'raw.db'));
    open.push(r);
    expect(r.info().lateAfterMs).toBe(7000);
    const id = r.info().storeId;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    mk().close();
    expect(r.info()).toEqual({ storeId: id, lateAfterMs: 10_000 }); // same file, same id
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'store-late-other-'));
    try {
      const s2 = openStore({ path: path.join(other, 'raw.db'), clock });
      expect(s2.info().storeId).not.toBe(id);
      s2.close();
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
    expect(() => mk({ lateAfterMs: -1 })).toThrow(/lateAfterMs/);
  });
});

describe('units', () => {
  test('the writer keeps the last unit given per series; readers get it from listSeries', () => {
    const s = mk();
    s.append([at('inv-1', T, 'W', 'W'), at('inv-1', T, 'TmpCab', 'Cel'), at('inv-1', T, 'St')]);
    const r = openStoreReader(path.join(dir, 'raw.db'));
    open.push(r);
    expect(r.listSeries()).toEqual([]); // nothing before the commit
    s.flush();
    const units = (): Record<string, string | null> => Object.fromEntries(r.listSeries().map((x) => [x.point, x.unit]));
    expect(units()).toEqual({ W: 'W', TmpCab: 'Cel', St: null });
    s.append([at('inv-1', T + S, 'W')]); // no unit: keeps the known one
    s.append([at('inv-1', T + 2 * S, 'TmpCab', 'K')]);
    s.flush();
    expect(units()).toEqual({ W: 'W', TmpCab: 'K', St: null });
    s.close();
    const again = mk();
    again.append([at('inv-1', T + 3 * S, 'TmpCab', 'K')]);
    expect(again.flush()?.samples).toBe(1);
    expect(units()).toEqual({ W: 'W', TmpCab: 'K', St: null });
  });
});

describe('a file made by the previous build', () => {
  /** The store as the previous build left it: no series.unit, no late_log, no storeId or lateAfterMs. */
  function oldFile(): string {
    const s = mk();
    s.append([at('inv-1', T - 60 * S, 'W', 'W')]);
    s.close();
    open.splice(0);
    const file = path.join(dir, 'raw.db');
    const db = new Database(file);
    db.exec("DROP TABLE late_log; DELETE FROM sqlite_sequence WHERE name = 'late_log'; ALTER TABLE series DROP COLUMN unit; DELETE FROM meta WHERE key IN ('storeId', 'lateAfterMs');");
    db.close();
    return file;
  }

  test('is read as it is, migrated in place by the writer (also under an open reader), and still read by the previous reader', () => {
    const file = oldFile();
    const r = openStoreReader(file);
    open.push(r);
    expect(r.listSeries()).toEqual([{ id: 1, assetId: 'inv-1', point: 'W', unit: null }]);
    expect(r.lateLogHead()).toBe(0);
    expect(r.lateLog(0)).toEqual([]);
    expect(r.info()).toEqual({ storeId: undefined, lateAfterMs: undefined });

    const s = mk();
    s.append([at('inv-1', T - 50 * S, 'W', 'W')]);
    s.flush();
    expect(r.listSeries()).toEqual([{ id: 1, assetId: 'inv-1', point: 'W', unit: 'W' }]);
    expect(r.lateLogHead()).toBe(1);
    expect(r.info().storeId).toBeDefined();

    // The previous build's reader: same schemaVersion, and its statements (as it spelled them) run.
    const old = new Database(file, { readonly: true });
    try {
      expect(old.prepare("SELECT value FROM meta WHERE key = 'schemaVersion'").pluck().get()).toBe('1');
      expect(old.prepare('SELECT id, asset AS assetId, point FROM series ORDER BY asset, point').all()).toEqual([{ id: 1, assetId: 'inv-1', point: 'W' }]);
      expect(old.prepare('SELECT id FROM series WHERE asset = ? AND point = ?').pluck().get('inv-1', 'W')).toBe(1);
      expect(old.prepare('SELECT ts FROM head WHERE series = ?').pluck().all(1)).toHaveLength(2);
    } finally {
      old.close();
    }
  });
});
