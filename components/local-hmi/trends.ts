/**
 * Trend data for the screen, read-only from the files their writers own:
 *  - 1 h: the Processor's store through its read-only reader (components/lib/store), raw samples,
 *    bucketed by the store itself when there are more than MAX_POINTS (average per bucket);
 *  - 24 h / 7 d: the Aggregator's 1-minute rollups (its `r1m` table, opened read-only: WAL lets
 *    us read while it writes; docs/aggregator.md), averaged with min/max per minute, merged into
 *    wider buckets when there are more than MAX_POINTS (7 d: 10 080 minutes -> 6-minute buckets).
 * A bucket without data becomes a null, so the chart shows a gap instead of a line across it.
 * Files that do not exist yet (first minutes after a deployment) give empty answers, not errors.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { openStoreReader, type SeriesInfo, type StoreReader } from '../lib/store';

export const MAX_POINTS = 2000;
export const RANGES = { '1h': 3600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 } as const;
export type TrendRange = keyof typeof RANGES;

export interface Trend {
  assetId: string;
  point: string;
  unit?: string;
  source: 'raw' | '1m';
  t: number[];
  v: Array<number | null>;
  min?: Array<number | null>;
  max?: Array<number | null>;
}

interface RollRow {
  start: number;
  count: number;
  min: number | null;
  max: number | null;
  sum: number;
}

export class TrendReader {
  private store: StoreReader | undefined;
  private rollups: Database.Database | undefined;
  private rollupStmt: Database.Statement | undefined;
  private seriesStmt: Database.Statement | undefined;

  constructor(private readonly o: { storeFile: string; rollupFile: string; nativeBinding?: string }) {}

  private openStore(): StoreReader | undefined {
    if (this.store) return this.store;
    if (!fs.existsSync(this.o.storeFile)) return undefined;
    this.store = openStoreReader(this.o.storeFile, this.o.nativeBinding ? { nativeBinding: this.o.nativeBinding } : {});
    return this.store;
  }

  private openRollups(): Database.Database | undefined {
    if (this.rollups) return this.rollups;
    if (!fs.existsSync(this.o.rollupFile)) return undefined;
    const db = new Database(this.o.rollupFile, { readonly: true, fileMustExist: true, ...(this.o.nativeBinding ? { nativeBinding: this.o.nativeBinding } : {}) });
    db.pragma('busy_timeout = 5000');
    this.rollups = db;
    this.seriesStmt = db.prepare('SELECT id, unit FROM series WHERE asset = ? AND point = ?');
    this.rollupStmt = db.prepare('SELECT start, count, min, max, sum FROM r1m WHERE sid = ? AND start >= ? AND start < ? ORDER BY start');
    return db;
  }

  get storeOpen(): boolean {
    return this.store !== undefined;
  }

  /** Every series the store knows (the trend picker). */
  series(): SeriesInfo[] {
    return this.openStore()?.listSeries() ?? [];
  }

  /** Units by series, from the store's series list, read again at most once a minute. */
  private units: { at: number; map: Map<string, string | null> } | undefined;

  unitOf(assetId: string, point: string, now = Date.now()): string | undefined {
    if (!this.units || now - this.units.at > 60_000 || now < this.units.at) {
      const store = this.openStore();
      if (!store) return undefined;
      this.units = { at: now, map: new Map(store.listSeries().map((s) => [`${s.assetId}\u0000${s.point}`, s.unit])) };
    }
    return this.units.map.get(`${assetId}\u0000${point}`) ?? undefined;
  }

  trend(assetId: string, point: string, range: TrendRange, now: number): Trend {
    const span = RANGES[range];
    const from = now - span;
    if (range === '1h') {
      const store = this.openStore();
      const unit = this.unitOf(assetId, point, now);
      const base: Trend = { assetId, point, ...(unit ? { unit } : {}), source: 'raw', t: [], v: [] };
      if (!store) return base;
      // How many samples first, from the chunks' stored statistics (no decoding of whole chunks),
      // then one read: raw when they fit, else bucketed by the store (average per bucket) without
      // a raw copy of the hour in memory first. Epoch-aligned buckets over an inclusive range:
      // ceil(span / bucket) + 1 of them at most.
      const key = { assetId, point };
      const n = store.chunkStats(key, from, now).total.n;
      const samples = n <= MAX_POINTS ? store.range(key, from, now) : store.range(key, from, now, { downsample: { bucketMs: Math.ceil(span / (MAX_POINTS - 1)), agg: 'avg' } });
      for (const s of samples) {
        base.t.push(s.ts);
        base.v.push(typeof s.v === 'number' && Number.isFinite(s.v) ? s.v : null);
      }
      return base;
    }
    const db = this.openRollups();
    const base: Trend = { assetId, point, source: '1m', t: [], v: [], min: [], max: [] };
    if (!db || !this.seriesStmt || !this.rollupStmt) return base;
    const s = this.seriesStmt.get(assetId, point) as { id: number; unit: string | null } | undefined;
    if (!s) return base;
    if (s.unit) base.unit = s.unit;
    const minutes = Math.ceil(span / 60_000);
    const per = Math.max(1, Math.ceil(minutes / MAX_POINTS));
    const bucketMs = per * 60_000;
    let cur: { start: number; count: number; sum: number; min: number | null; max: number | null } | undefined;
    let lastStart: number | undefined;
    const emit = (): void => {
      if (!cur) return;
      // A gap of more than one bucket: a null between, so the line breaks.
      if (lastStart !== undefined && cur.start - lastStart > bucketMs) {
        base.t.push(lastStart + bucketMs);
        base.v.push(null);
        base.min!.push(null);
        base.max!.push(null);
      }
      base.t.push(cur.start);
      base.v.push(cur.count > 0 ? cur.sum / cur.count : null);
      base.min!.push(cur.min);
      base.max!.push(cur.max);
      lastStart = cur.start;
      cur = undefined;
    };
    // Streamed row by row: a week is 10 080 rows, never all in memory at once.
    for (const r of this.rollupStmt.iterate(s.id, from, now) as IterableIterator<RollRow>) {
      const b = Math.floor(r.start / bucketMs) * bucketMs;
      if (cur && cur.start !== b) emit();
      cur ??= { start: b, count: 0, sum: 0, min: null, max: null };
      cur.count += r.count;
      cur.sum += r.sum;
      if (r.min !== null) cur.min = cur.min === null ? r.min : Math.min(cur.min, r.min);
      if (r.max !== null) cur.max = cur.max === null ? r.max : Math.max(cur.max, r.max);
    }
    emit();
    return base;
  }

  /** The first valued sample of a series at or after `from` (an energy counter at the day's start). */
  firstValue(assetId: string, point: string, from: number, to: number): number | undefined {
    const store = this.openStore();
    if (!store) return undefined;
    // Scan in hours so a day of 1 Hz samples is not decoded at once.
    for (let t = from; t < to; t += 3600_000) {
      const s = store.range({ assetId, point }, t, Math.min(to, t + 3600_000 - 1)).find((x) => typeof x.v === 'number');
      if (s) return s.v as number;
    }
    return undefined;
  }

  close(): void {
    try {
      this.store?.close();
    } finally {
      this.store = undefined;
      if (this.rollups?.open) this.rollups.close();
      this.rollups = undefined;
    }
  }
}
