/**
 * Active alarms and learned assets, kept in the store's SQLite file in tables of their own, so that
 * active alarms survive a restart (docs/processor.md "Alarms") with the same durability as the
 * samples (WAL, synchronous FULL: each change is its own committed transaction). Alarm transitions
 * are rare, so one fsync each is cheap.
 */
import type { Db } from '../../lib/store/schema';
import type { Severity } from '../../lib/contract';

/** What is remembered of a raised alarm. */
export interface ActiveAlarm {
  /** Rule, asset, point and bit: one alarm instance per key. */
  key: string;
  alarmId: string;
  ruleId: string;
  assetId: string;
  type: string;
  severity: Severity;
  point?: string;
  raisedAt: number;
  /** Last value published (raise or update). */
  value: number | null;
  threshold?: number;
}

export interface AlarmPersistence {
  load(): ActiveAlarm[];
  save(a: ActiveAlarm): void;
  remove(key: string): void;
  loadAssets(): string[];
  addAsset(assetId: string, source: string, at: number): void;
}

function isActiveAlarm(v: unknown): v is ActiveAlarm {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r['key'] === 'string' && typeof r['alarmId'] === 'string' && typeof r['ruleId'] === 'string' && typeof r['assetId'] === 'string' && typeof r['type'] === 'string' && typeof r['raisedAt'] === 'number';
}

export function sqlitePersistence(db: Db): AlarmPersistence {
  db.exec(`
    CREATE TABLE IF NOT EXISTS processor_alarm (key TEXT PRIMARY KEY, alarm TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS processor_asset (asset TEXT PRIMARY KEY, source TEXT NOT NULL, first_seen INTEGER NOT NULL);
  `);
  const upsert = db.prepare('INSERT INTO processor_alarm (key, alarm) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET alarm = excluded.alarm');
  const del = db.prepare('DELETE FROM processor_alarm WHERE key = ?');
  const insAsset = db.prepare('INSERT OR IGNORE INTO processor_asset (asset, source, first_seen) VALUES (?, ?, ?)');
  return {
    load: () => {
      const out: ActiveAlarm[] = [];
      for (const row of db.prepare('SELECT alarm FROM processor_alarm').all() as Array<{ alarm: string }>) {
        try {
          const v: unknown = JSON.parse(row.alarm);
          if (isActiveAlarm(v)) out.push(v);
        } catch {
          // A row we cannot read is dropped below rather than kept forever.
        }
      }
      return out;
    },
    save: (a) => void upsert.run(a.key, JSON.stringify(a)),
    remove: (key) => void del.run(key),
    loadAssets: () => (db.prepare('SELECT asset FROM processor_asset').all() as Array<{ asset: string }>).map((r) => r.asset),
    addAsset: (assetId, source, at) => void insAsset.run(assetId, source, at),
  };
}

/** For tests and benchmarks that need no file. */
export function memoryPersistence(): AlarmPersistence & { alarms: Map<string, ActiveAlarm>; assets: Set<string> } {
  const alarms = new Map<string, ActiveAlarm>();
  const assets = new Set<string>();
  return {
    alarms,
    assets,
    load: () => [...alarms.values()].map((a) => ({ ...a })),
    save: (a) => void alarms.set(a.key, { ...a }),
    remove: (key) => void alarms.delete(key),
    loadAssets: () => [...assets],
    addAsset: (a) => void assets.add(a),
  };
}
