/**
 * Retention: raw data (and the late log) is kept for `retentionMs` (7 days by default), and also cut, oldest chunks
 * first across all series, when the database outgrows `maxBytes` or the file system's free space
 * falls under `minFreeBytes`. Pages freed by age and budget deletions go back to the file system
 * in bounded steps afterwards (reclaim.ts, run by the maintenance timer); when the free-space floor
 * is crossed they go back at once (incremental_vacuum, then a checkpoint), since the floor check
 * needs the file to have shrunk.
 *
 * When the free-space floor is crossed and no chunk is left to delete, the writer stops taking
 * samples (`diskFull`, counted as rejections) rather than fill the disk; it resumes by itself
 * once space is back.
 */
import path from 'node:path';
import fs from 'node:fs';
import { bucketOf, usedBytes, type Db } from './schema';
import type { StoreCounters } from './types';

export interface RetentionOptions {
  retentionMs: number;
  maxBytes: number;
  minFreeBytes: number;
}

/** Free bytes available to this user on the file system holding `dir`. Injected in tests. */
export type FreeSpace = (dir: string) => number;

export const statfsFreeSpace: FreeSpace = (dir) => {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
};

export interface RetentionResult {
  deletedChunks: number;
  deletedHeadRows: number;
  deletedLateLogRows: number;
  usedBytes: number;
  freeBytes: number;
  diskFull: boolean;
}

/** Rows deleted per statement: a big backlog is cut in pieces, not one giant transaction. */
const BATCH = 500;
/** Room left under a limit after cutting, so retention does not run on every pass at the edge. */
const HYSTERESIS = 0.05;

export class Retention {
  private readonly st;

  constructor(
    private readonly db: Db,
    private readonly file: string,
    private readonly counters: StoreCounters,
    private readonly opts: RetentionOptions,
    private readonly freeSpace: FreeSpace,
  ) {
    this.st = {
      expired: db.prepare('SELECT id FROM chunk WHERE max_ts < ? ORDER BY max_ts LIMIT ?').pluck(),
      oldest: db.prepare('SELECT id, length(data) + 64 AS bytes FROM chunk ORDER BY max_ts LIMIT ?'),
      del: db.prepare('DELETE FROM chunk WHERE id = ?'),
      headExpired: db.prepare('DELETE FROM head WHERE bucket < ?'),
      // Entries about samples the age cut has deleted anyway; ids are never reused (AUTOINCREMENT).
      lateExpired: db.prepare('DELETE FROM late_log WHERE committed_at < ?'),
    };
  }

  private deleteIds(ids: number[]): void {
    this.db.transaction(() => {
      for (const id of ids) this.st.del.run(id);
    })();
    this.counters.retentionDeletedChunks += ids.length;
  }

  /** Deletes the oldest chunks until about `bytes` of chunk data are gone; returns chunks deleted. */
  private cutBytes(bytes: number): number {
    let freed = 0;
    let deleted = 0;
    while (freed < bytes) {
      const rows = this.st.oldest.all(BATCH) as Array<{ id: number; bytes: number }>;
      if (rows.length === 0) break;
      const ids: number[] = [];
      for (const r of rows) {
        ids.push(r.id);
        freed += r.bytes;
        if (freed >= bytes) break;
      }
      this.deleteIds(ids);
      deleted += ids.length;
    }
    return deleted;
  }

  private vacuum(): void {
    this.db.pragma('incremental_vacuum');
    // The file only shrinks once the WAL is checkpointed; PASSIVE never waits for readers.
    this.db.pragma('wal_checkpoint(PASSIVE)');
  }

  run(now: number): RetentionResult {
    let deletedChunks = 0;
    // 1. Age.
    const cutoff = now - this.opts.retentionMs;
    for (;;) {
      const ids = this.st.expired.all(cutoff, BATCH) as number[];
      if (ids.length === 0) break;
      this.deleteIds(ids);
      deletedChunks += ids.length;
    }
    const deletedHeadRows = this.st.headExpired.run(bucketOf(cutoff)).changes;
    const deletedLateLogRows = this.st.lateExpired.run(cutoff).changes;
    this.counters.lateLogPruned += deletedLateLogRows;

    // 2. Byte budget (pages in use: free pages do not count, so no vacuum is needed to meet it).
    let used = usedBytes(this.db);
    if (used > this.opts.maxBytes) {
      deletedChunks += this.cutBytes(used - this.opts.maxBytes * (1 - HYSTERESIS));
      used = usedBytes(this.db);
    }

    // 3. Free-disk floor.
    const dir = path.dirname(path.resolve(this.file));
    let free = this.freeSpace(dir);
    let diskFull = false;
    if (free < this.opts.minFreeBytes) {
      const n = this.cutBytes(this.opts.minFreeBytes * (1 + HYSTERESIS) - free);
      deletedChunks += n;
      // Every free page, the ones freed by earlier deletions too: the disk needs them now.
      if (n > 0 || (this.db.pragma('freelist_count', { simple: true }) as number) > 0) {
        this.vacuum();
        used = usedBytes(this.db);
        free = this.freeSpace(dir);
      }
      diskFull = free < this.opts.minFreeBytes && n === 0;
    }
    return { deletedChunks, deletedHeadRows, deletedLateLogRows, usedBytes: used, freeBytes: free, diskFull };
  }
}
