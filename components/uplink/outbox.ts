/**
 * The Uplink's durable outbox (docs/uplink.md): one SQLite file in the component's work folder,
 * WAL mode.
 *
 *  records       every message the cloud must get, inserted when it is received (one transaction per
 *                group of messages that arrived in the same event-loop turn);
 *  batches       records sealed per priority class into gzip NDJSON blobs, in one transaction that also
 *                deletes the records, so a record is always in exactly one of the two tables;
 *  deliveries    (exporter, class, batch) still to be confirmed; a batch is deleted with its last one;
 *  alarm_seen    the (alarmId, transitionSeq) of every alarm transition taken in, so one sent again
 *                (a replay, a snapshot) is not sent twice; inserted in the same transaction as its record;
 *  alarm_sources per alarm source, its journal and the sequence number up to which every transition
 *                is in here (components/uplink/alarm-sync.ts).
 *
 * Ids are AUTOINCREMENT, so a batch id (its `seq`) is never reused, and the outbox id (a random UUID
 * made with the file) goes with every batch: (outboxId, seq) is the cloud's de-duplication key.
 *
 * Bounds: bytes (records' JSON + batches' gzip + a fixed per-row overhead) and age. The overflow
 * policy is in `makeRoom`; every dropped record is counted per reason and the counts persist.
 * In-memory totals mirror the tables; a transaction that fails (a full disk during a long outage,
 * exactly when it matters) reloads them from the database, so they never drift. Freed pages go back
 * to the file system (auto_vacuum INCREMENTAL, `reclaim`).
 */
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { CLASSES, classAt, type RecordClass } from './classes';

const RECORD_OVERHEAD = 48;
const BATCH_OVERHEAD = 96;

export interface OutboxOptions {
  path: string;
  synchronous: 'FULL' | 'NORMAL';
  maxBytes: number;
  nativeBinding?: string;
}

export interface BatchMeta {
  id: number;
  cls: RecordClass;
  /** Receive time of the batch's oldest record. */
  oldestAt: number;
  createdAt: number;
  count: number;
  rawBytes: number;
  bytes: number;
}

export interface Batch extends BatchMeta {
  /** gzip of NDJSON, one record per line. */
  body: Buffer;
}

export interface AppendItem {
  cls: RecordClass;
  receivedAt: number;
  body: string;
  /** An alarm transition's identity: a second item with the same key is a duplicate and not stored. */
  dedupeKey?: string;
}

export interface AppendResult {
  /** Records dropped by the overflow policy (this item or older ones). */
  dropped: number;
  /** Items not stored because their dedupeKey was already taken in. */
  duplicates: number;
}

/** Where an alarm source's transitions are complete up to. */
export interface SourcePosition {
  source: string;
  journalId: string;
  seq: number;
}

export interface SealOptions {
  now: number;
  delayMs: Record<RecordClass, number>;
  maxRecords: number;
  maxBytes: number;
  gzipLevel: number;
  /** Seal every pending record regardless of delay (shutdown, tests). */
  force?: boolean;
}

interface ClassTotals {
  records: number;
  recordBytes: number;
  oldestRecordAt: number | null;
  batches: number;
  batchRecords: number;
  batchBytes: number;
}

type Row = Record<string, number>;

/** Pages handed back to the file system per `reclaim` call (bounded work per call). */
const RECLAIM_PAGES = 2048;

export class Outbox {
  readonly id: string;
  private readonly db: Database.Database;
  private totals: ClassTotals[] = [];
  private readonly exporterCount = new Map<number, number>();
  private readonly dropped = new Map<string, number>();
  private readonly st;
  private rawSealed = 0;
  private gzSealed = 0;
  private closed = false;
  private maxBytes: number;

  constructor(opts: OutboxOptions) {
    this.maxBytes = opts.maxBytes;
    this.db = new Database(opts.path, opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {});
    // auto_vacuum takes effect only before the first table exists: a new file hands freed pages back.
    const fresh = (this.db.prepare(`SELECT count(*) FROM sqlite_master WHERE type = 'table'`).pluck().get() as number) === 0;
    if (fresh) this.db.pragma('auto_vacuum = INCREMENTAL');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY AUTOINCREMENT, class INTEGER NOT NULL, received_at INTEGER NOT NULL, body TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS records_by_class ON records(class, id);
      CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT, class INTEGER NOT NULL, oldest_at INTEGER NOT NULL, created_at INTEGER NOT NULL,
        count INTEGER NOT NULL, raw_bytes INTEGER NOT NULL, bytes INTEGER NOT NULL, body BLOB NOT NULL);
      CREATE INDEX IF NOT EXISTS batches_by_class ON batches(class, id);
      CREATE TABLE IF NOT EXISTS deliveries (exporter INTEGER NOT NULL, class INTEGER NOT NULL, batch_id INTEGER NOT NULL, PRIMARY KEY (exporter, class, batch_id)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS dropped (reason TEXT PRIMARY KEY, n INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS alarm_seen (key TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS alarm_seen_by_age ON alarm_seen(at);
      CREATE TABLE IF NOT EXISTS alarm_sources (source TEXT PRIMARY KEY, journal_id TEXT NOT NULL, seq INTEGER NOT NULL);
    `);
    this.db.prepare(`INSERT OR IGNORE INTO meta (k, v) VALUES ('outboxId', ?)`).run(randomUUID());
    this.id = this.db.prepare(`SELECT v FROM meta WHERE k = 'outboxId'`).pluck().get() as string;
    const db = this.db;
    this.st = {
      insertRecord: db.prepare(`INSERT INTO records (class, received_at, body) VALUES (?, ?, ?)`),
      seen: db.prepare(`INSERT OR IGNORE INTO alarm_seen (key, at) VALUES (?, ?)`),
      forgetSeen: db.prepare(`DELETE FROM alarm_seen WHERE at < ?`),
      putSource: db.prepare(`INSERT INTO alarm_sources (source, journal_id, seq) VALUES (?, ?, ?) ON CONFLICT(source) DO UPDATE SET journal_id = excluded.journal_id, seq = excluded.seq`),
      sources: db.prepare(`SELECT source, journal_id, seq FROM alarm_sources`),
      oldestBatch: db.prepare(`SELECT id, count FROM batches WHERE class = ? ORDER BY id LIMIT 1`),
      oldestRecord: db.prepare(`SELECT id, length(CAST(body AS BLOB)) b FROM records WHERE class = ? ORDER BY id LIMIT 1`),
      deleteRecord: db.prepare(`DELETE FROM records WHERE id = ?`),
      selectRecords: db.prepare(`SELECT id, received_at, body FROM records WHERE class = ? ORDER BY id LIMIT ?`),
      insertBatch: db.prepare(`INSERT INTO batches (class, oldest_at, created_at, count, raw_bytes, bytes, body) VALUES (?, ?, ?, ?, ?, ?, ?)`),
      insertDelivery: db.prepare(`INSERT INTO deliveries (exporter, class, batch_id) VALUES (?, ?, ?)`),
      deleteRecordsUpTo: db.prepare(`DELETE FROM records WHERE class = ? AND id <= ?`),
      oldestRecordAt: db.prepare(`SELECT MIN(received_at) FROM records WHERE class = ?`).pluck(),
      next: db.prepare(
        `SELECT b.id, b.class, b.oldest_at, b.created_at, b.count, b.raw_bytes, b.bytes FROM deliveries d JOIN batches b ON b.id = d.batch_id
         WHERE d.exporter = ? AND d.class <= ? ORDER BY d.class, d.batch_id LIMIT ?`,
      ),
      body: db.prepare(`SELECT body FROM batches WHERE id = ?`).pluck(),
      deleteDelivery: db.prepare(`DELETE FROM deliveries WHERE exporter = ? AND class = ? AND batch_id = ?`),
      anyDelivery: db.prepare(`SELECT 1 FROM deliveries WHERE class = ? AND batch_id = ? LIMIT 1`),
      expiredBatches: db.prepare(`SELECT id, count FROM batches WHERE class = ? AND oldest_at < ?`),
      expiredRecordStats: db.prepare(`SELECT COUNT(*) n, SUM(length(CAST(body AS BLOB))) b FROM records WHERE class = ? AND received_at < ?`),
      deleteExpiredRecords: db.prepare(`DELETE FROM records WHERE class = ? AND received_at < ?`),
      batchInfo: db.prepare(`SELECT class, count, bytes FROM batches WHERE id = ?`),
      batchExporters: db.prepare(`SELECT exporter FROM deliveries WHERE class = ? AND batch_id = ?`),
      deleteDeliveries: db.prepare(`DELETE FROM deliveries WHERE class = ? AND batch_id = ?`),
      deleteBatch: db.prepare(`DELETE FROM batches WHERE id = ?`),
      countDropped: db.prepare(`INSERT INTO dropped (reason, n) VALUES (?, ?) ON CONFLICT(reason) DO UPDATE SET n = n + excluded.n`),
      recordTotals: db.prepare(`SELECT class, COUNT(*) n, SUM(length(CAST(body AS BLOB))) b, MIN(received_at) o FROM records GROUP BY class`),
      batchTotals: db.prepare(`SELECT class, COUNT(*) n, SUM(count) c, SUM(bytes) b FROM batches GROUP BY class`),
      deliveryTotals: db.prepare(`SELECT exporter, COUNT(*) n FROM deliveries GROUP BY exporter`),
      droppedAll: db.prepare(`SELECT reason, n FROM dropped`),
    };
    this.reload();
  }

  /** In-memory totals from the tables (at open, and after a transaction that failed). */
  private reload(): void {
    this.totals = CLASSES.map(() => ({ records: 0, recordBytes: 0, oldestRecordAt: null, batches: 0, batchRecords: 0, batchBytes: 0 }));
    for (const r of this.st.recordTotals.all() as Row[]) {
      const t = this.totals[r['class'] ?? 0]!;
      t.records = r['n'] ?? 0;
      t.recordBytes = (r['b'] ?? 0) + t.records * RECORD_OVERHEAD;
      t.oldestRecordAt = r['o'] ?? null;
    }
    for (const r of this.st.batchTotals.all() as Row[]) {
      const t = this.totals[r['class'] ?? 0]!;
      t.batches = r['n'] ?? 0;
      t.batchRecords = r['c'] ?? 0;
      t.batchBytes = (r['b'] ?? 0) + t.batches * BATCH_OVERHEAD;
    }
    this.exporterCount.clear();
    for (const r of this.st.deliveryTotals.all() as Row[]) this.exporterCount.set(r['exporter'] ?? 0, r['n'] ?? 0);
    this.dropped.clear();
    for (const r of this.st.droppedAll.all() as Array<{ reason: string; n: number }>) this.dropped.set(r.reason, r.n);
  }

  /** Runs `fn` in one transaction; if it fails, the in-memory totals are reloaded, then it throws. */
  private tx<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      this.reload();
      throw err;
    }
  }

  get bytes(): number {
    return this.totals.reduce((s, t) => s + t.recordBytes + t.batchBytes, 0);
  }

  /** The byte bound can change with the configuration; it applies from the next append. */
  setMaxBytes(n: number): void {
    this.maxBytes = n;
  }

  /** Records waiting (unsealed or in a batch), by class. */
  backlog(): Record<RecordClass, number> {
    return Object.fromEntries(CLASSES.map((c, i) => [c, this.totals[i]!.records + this.totals[i]!.batchRecords])) as Record<RecordClass, number>;
  }

  pendingFor(exporter: number): number {
    return this.exporterCount.get(exporter) ?? 0;
  }

  droppedCounts(): Record<string, number> {
    return Object.fromEntries(this.dropped);
  }

  /** Raw NDJSON bytes / gzip bytes over every batch sealed by this process. */
  compressionRatio(): number | null {
    return this.gzSealed > 0 ? this.rawSealed / this.gzSealed : null;
  }

  /** Where each alarm source's transitions are complete up to (persisted with the records). */
  sourcePositions(): SourcePosition[] {
    return (this.st.sources.all() as Array<{ source: string; journal_id: string; seq: number }>).map((r) => ({ source: r.source, journalId: r.journal_id, seq: r.seq }));
  }

  /**
   * Persists the items (one transaction), making room first by the overflow policy, skipping
   * items whose dedupeKey was seen before, and saving `positions` in the same transaction.
   */
  append(items: readonly AppendItem[], positions: readonly SourcePosition[] = []): AppendResult {
    let dropped = 0;
    let duplicates = 0;
    this.tx(() => {
      for (const it of items) {
        if (it.dedupeKey !== undefined && this.st.seen.run(it.dedupeKey, it.receivedAt).changes === 0) {
          duplicates++;
          continue;
        }
        const ci = CLASSES.indexOf(it.cls);
        const size = Buffer.byteLength(it.body) + RECORD_OVERHEAD;
        const room = this.makeRoom(size, ci);
        dropped += room.dropped;
        if (!room.fits) {
          this.count(`overflow_${it.cls}`, 1);
          dropped++;
          continue;
        }
        this.st.insertRecord.run(ci, it.receivedAt, it.body);
        const t = this.totals[ci]!;
        t.records++;
        t.recordBytes += size;
        if (t.oldestRecordAt === null) t.oldestRecordAt = it.receivedAt;
      }
      for (const p of positions) this.st.putSource.run(p.source, p.journalId, p.seq);
    });
    return { dropped, duplicates };
  }

  /**
   * Overflow policy: while the new record does not fit, drop the oldest data of the lowest-priority
   * class present (health, then daily, 15-minute, 1-minute, events, alarms), never going above the
   * incoming record's own class: a record that could only fit by evicting more urgent data is itself
   * dropped. Alarms go last: an incoming alarm may evict anything, older alarms included.
   */
  private makeRoom(size: number, incoming: number): { fits: boolean; dropped: number } {
    let dropped = 0;
    if (size > this.maxBytes) return { fits: false, dropped };
    for (let ci = CLASSES.length - 1; this.bytes + size > this.maxBytes; ) {
      if (ci < incoming) return { fits: false, dropped };
      const t = this.totals[ci]!;
      if (t.batches > 0) {
        const b = this.st.oldestBatch.get(ci) as Row;
        this.deleteBatch(b['id'] ?? 0);
        this.count(`overflow_${classAt(ci)}`, b['count'] ?? 0);
        dropped += b['count'] ?? 0;
      } else if (t.records > 0) {
        const r = this.st.oldestRecord.get(ci) as Row;
        this.st.deleteRecord.run(r['id'] ?? 0);
        this.recordsRemoved(ci, 1, (r['b'] ?? 0) + RECORD_OVERHEAD);
        this.count(`overflow_${classAt(ci)}`, 1);
        dropped++;
      } else ci--;
    }
    return { fits: true, dropped };
  }

  /** Seals due records into batches; returns the new batches (ids in send order). */
  seal(o: SealOptions, routes: (cls: RecordClass) => readonly number[]): BatchMeta[] {
    const out: BatchMeta[] = [];
    for (let ci = 0; ci < CLASSES.length; ci++) {
      const cls = classAt(ci);
      for (;;) {
        const t = this.totals[ci]!;
        if (t.records === 0 || t.oldestRecordAt === null) break;
        const due = o.force === true || t.records >= o.maxRecords || t.recordBytes >= o.maxBytes * 4 || t.oldestRecordAt + o.delayMs[cls] <= o.now;
        if (!due) break;
        let rows = this.st.selectRecords.all(ci, o.maxRecords) as Array<{ id: number; received_at: number; body: string }>;
        let raw = '';
        let gz: Buffer = Buffer.alloc(0);
        for (;;) {
          raw = rows.map((r) => r.body).join('\n') + '\n';
          gz = gzipSync(raw, { level: o.gzipLevel });
          if (gz.length <= o.maxBytes || rows.length === 1) break;
          rows = rows.slice(0, Math.max(1, Math.floor((rows.length * o.maxBytes) / gz.length / 1.1)));
        }
        const last = rows[rows.length - 1]!;
        const oldest = rows[0]!.received_at;
        const rawBytes = Buffer.byteLength(raw);
        const exporters = routes(cls);
        const meta = this.tx((): BatchMeta => {
          const id = Number(this.st.insertBatch.run(ci, oldest, o.now, rows.length, rawBytes, gz.length, gz).lastInsertRowid);
          for (const e of exporters) this.st.insertDelivery.run(e, ci, id);
          this.st.deleteRecordsUpTo.run(ci, last.id);
          return { id, cls, oldestAt: oldest, createdAt: o.now, count: rows.length, rawBytes, bytes: gz.length };
        });
        this.recordsRemoved(ci, rows.length, rawBytes - rows.length + rows.length * RECORD_OVERHEAD);
        t.oldestRecordAt = this.st.oldestRecordAt.get(ci) as number | null;
        t.batches++;
        t.batchRecords += rows.length;
        t.batchBytes += gz.length + BATCH_OVERHEAD;
        for (const e of exporters) this.exporterCount.set(e, this.pendingFor(e) + 1);
        this.rawSealed += rawBytes;
        this.gzSealed += gz.length;
        out.push(meta);
      }
    }
    return out;
  }

  /**
   * The next batches for an exporter in priority order (class, then age), skipping those in flight.
   * `maxClass` limits the classes (0 = alarms only).
   */
  next(exporter: number, skip: ReadonlySet<number>, limit: number, maxClass = CLASSES.length - 1): BatchMeta[] {
    const rows = this.st.next.all(exporter, maxClass, limit + skip.size) as Row[];
    const out: BatchMeta[] = [];
    for (const r of rows) {
      const id = r['id'] ?? 0;
      if (skip.has(id)) continue;
      out.push({ id, cls: classAt(r['class'] ?? 0), oldestAt: r['oldest_at'] ?? 0, createdAt: r['created_at'] ?? 0, count: r['count'] ?? 0, rawBytes: r['raw_bytes'] ?? 0, bytes: r['bytes'] ?? 0 });
      if (out.length >= limit) break;
    }
    return out;
  }

  load(meta: BatchMeta): Batch | undefined {
    const body = this.st.body.get(meta.id) as Buffer | undefined;
    return body ? { ...meta, body } : undefined;
  }

  /** The exporter confirmed the batch; the batch goes when no exporter still needs it. No-op if it was evicted meanwhile. */
  confirm(exporter: number, meta: BatchMeta): void {
    this.tx(() => {
      const ci = CLASSES.indexOf(meta.cls);
      if (this.st.deleteDelivery.run(exporter, ci, meta.id).changes === 0) return;
      this.exporterCount.set(exporter, this.pendingFor(exporter) - 1);
      if (!this.st.anyDelivery.get(ci, meta.id)) this.deleteBatch(meta.id);
    });
  }

  /** Age bound: drops records and batches received before `now - maxAgeMs`; returns records dropped. */
  expire(now: number, maxAgeMs: number): number {
    const cutoff = now - maxAgeMs;
    let n = 0;
    this.tx(() => {
      for (let ci = 0; ci < CLASSES.length; ci++) {
        const t = this.totals[ci]!;
        if (t.batches > 0) {
          for (const b of this.st.expiredBatches.all(ci, cutoff) as Row[]) {
            this.deleteBatch(b['id'] ?? 0);
            this.count(`expired_${classAt(ci)}`, b['count'] ?? 0);
            n += b['count'] ?? 0;
          }
        }
        if (t.oldestRecordAt !== null && t.oldestRecordAt < cutoff) {
          const r = this.st.expiredRecordStats.get(ci, cutoff) as Row;
          this.st.deleteExpiredRecords.run(ci, cutoff);
          this.recordsRemoved(ci, r['n'] ?? 0, (r['b'] ?? 0) + (r['n'] ?? 0) * RECORD_OVERHEAD);
          t.oldestRecordAt = this.st.oldestRecordAt.get(ci) as number | null;
          this.count(`expired_${classAt(ci)}`, r['n'] ?? 0);
          n += r['n'] ?? 0;
        }
      }
    });
    return n;
  }

  /** Alarm identities older than this are forgotten (they are past every journal's retention). */
  forgetSeen(before: number): number {
    return this.st.forgetSeen.run(before).changes;
  }

  /** Hands up to RECLAIM_PAGES free pages back to the file system; returns the pages still free. */
  reclaim(): number {
    this.db.pragma(`incremental_vacuum(${RECLAIM_PAGES})`);
    this.db.pragma('wal_checkpoint(PASSIVE)');
    return this.db.pragma('freelist_count', { simple: true }) as number;
  }

  /** Bytes of the database file, free pages included (what the disk holds). */
  fileBytes(): number {
    return (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private deleteBatch(id: number): void {
    const b = this.st.batchInfo.get(id) as Row | undefined;
    if (!b) return;
    const ci = b['class'] ?? 0;
    for (const d of this.st.batchExporters.all(ci, id) as Row[]) {
      this.exporterCount.set(d['exporter'] ?? 0, this.pendingFor(d['exporter'] ?? 0) - 1);
    }
    this.st.deleteDeliveries.run(ci, id);
    this.st.deleteBatch.run(id);
    const t = this.totals[ci]!;
    t.batches--;
    t.batchRecords -= b['count'] ?? 0;
    t.batchBytes -= (b['bytes'] ?? 0) + BATCH_OVERHEAD;
  }

  private recordsRemoved(ci: number, n: number, bytes: number): void {
    const t = this.totals[ci]!;
    t.records -= n;
    t.recordBytes -= bytes;
    if (t.records <= 0) {
      t.records = 0;
      t.recordBytes = 0;
      t.oldestRecordAt = null;
    }
  }

  private count(reason: string, n: number): void {
    if (n <= 0) return;
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + n);
    this.st.countDropped.run(reason, n);
  }
}
