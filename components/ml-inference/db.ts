/**
 * MLInference's own small SQLite file: its alarm journal (AlarmJournal, docs/alarms.md) and the
 * last input each model was fed (the trial input a new model is validated on). One writer; WAL;
 * synchronous FULL as every alarm source (a raise the component reported is on disk). The
 * Processor's store is never written here: it is read through its read-only reader.
 */
import Database from 'better-sqlite3';
import { openOwnDb } from '../lib/own-db';
import type { MlModel } from '../lib/contract';

const DDL = `CREATE TABLE IF NOT EXISTS samples (kind TEXT PRIMARY KEY, ts INTEGER NOT NULL, features TEXT NOT NULL);`;

export class MlDb {
  readonly db: Database.Database;
  private readonly st;

  constructor(file: string, nativeBinding?: string) {
    this.db = openOwnDb(file, nativeBinding);
    this.db.exec(DDL);
    this.st = {
      put: this.db.prepare('INSERT INTO samples (kind, ts, features) VALUES (?, ?, ?) ON CONFLICT(kind) DO UPDATE SET ts = excluded.ts, features = excluded.features'),
      get: this.db.prepare('SELECT features FROM samples WHERE kind = ?').pluck(),
    };
  }

  putSample(kind: MlModel, ts: number, features: readonly number[]): void {
    this.st.put.run(kind, ts, JSON.stringify(features));
  }

  sample(kind: MlModel): number[] | undefined {
    const s = this.st.get.get(kind) as string | undefined;
    if (s === undefined) return undefined;
    try {
      const v = JSON.parse(s) as unknown;
      return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? (v as number[]) : undefined;
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.db.close();
  }
}
