/**
 * Analytics's own small SQLite file (docs/analytics-component.md "State"): its alarm journal
 * (AlarmJournal, docs/alarms.md), the latest result of every (asset, kind) for the
 * `dcmms-edge analytics` command and a restart, and the day of each daily figure already published.
 *
 * One writer (this process); WAL so the CLI reads while it writes; synchronous FULL as every
 * alarm source (a raise the component reported is on disk). The Processor's store is never written
 * here: it is read through its read-only reader.
 */
import Database from 'better-sqlite3';
import { openOwnDb } from '../lib/own-db';
import type { AnalyticsKind } from '../lib/contract';

export interface StoredResult {
  assetId: string;
  kind: AnalyticsKind;
  ts: number;
  value: number | null;
  u: string | null;
  details: Record<string, unknown>;
}

const DDL = `
CREATE TABLE IF NOT EXISTS results (asset_id TEXT NOT NULL, kind TEXT NOT NULL, ts INTEGER NOT NULL, value REAL, u TEXT, details TEXT NOT NULL, PRIMARY KEY (asset_id, kind));
CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v TEXT NOT NULL);
`;

function toResult(r: Record<string, unknown>): StoredResult {
  return {
    assetId: r['asset_id'] as string,
    kind: r['kind'] as AnalyticsKind,
    ts: r['ts'] as number,
    value: (r['value'] as number | null) ?? null,
    u: (r['u'] as string | null) ?? null,
    details: JSON.parse(r['details'] as string) as Record<string, unknown>,
  };
}

export class AnalyticsDb {
  readonly db: Database.Database;
  private readonly st;

  constructor(file: string, nativeBinding?: string) {
    this.db = openOwnDb(file, nativeBinding);
    this.db.exec(DDL);
    this.st = {
      put: this.db.prepare(
        `INSERT INTO results (asset_id, kind, ts, value, u, details) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(asset_id, kind) DO UPDATE SET ts = excluded.ts, value = excluded.value, u = excluded.u, details = excluded.details`,
      ),
      all: this.db.prepare('SELECT * FROM results ORDER BY asset_id, kind'),
      getState: this.db.prepare('SELECT v FROM state WHERE k = ?').pluck(),
      putState: this.db.prepare('INSERT INTO state (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v'),
    };
  }

  /** The results of one evaluation, in one transaction (one fsync per minute, not per figure). */
  putResults(rows: readonly StoredResult[]): void {
    this.db.transaction(() => {
      for (const r of rows) this.st.put.run(r.assetId, r.kind, r.ts, r.value, r.u, JSON.stringify(r.details));
    })();
  }

  results(): StoredResult[] {
    return (this.st.all.all() as Record<string, unknown>[]).map(toResult);
  }

  getState<T>(k: string): T | undefined {
    const v = this.st.getState.get(k) as string | undefined;
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }

  putState(k: string, v: unknown): void {
    this.st.putState.run(k, JSON.stringify(v));
  }

  close(): void {
    this.db.close();
  }
}

/**
 * The latest results and active alarms of a running (or stopped) Analytics, read with a read-only
 * connection (`dcmms-edge analytics`): the component need not be asked, and cannot be disturbed.
 */
export function readAnalyticsDb(file: string): { results: StoredResult[]; activeAlarms: Array<Record<string, unknown>> } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const results = (db.prepare('SELECT * FROM results ORDER BY asset_id, kind').all() as Record<string, unknown>[]).map(toResult);
    const hasActive = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alarm_active'`).pluck().get() !== undefined;
    const activeAlarms = hasActive ? (db.prepare('SELECT message FROM alarm_active ORDER BY rowid').pluck().all() as string[]).map((m) => JSON.parse(m) as Record<string, unknown>) : [];
    return { results, activeAlarms };
  } finally {
    db.close();
  }
}
