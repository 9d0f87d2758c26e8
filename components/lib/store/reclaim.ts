/**
 * Giving free pages back to the file system. The file is created with auto_vacuum=INCREMENTAL, so
 * pages freed by deletes (sealed head rows, expired chunks) stay in the file, on SQLite's free
 * list, until `PRAGMA incremental_vacuum(N)` moves the last N pages of the file into free slots
 * and cuts them off. In WAL mode the database file itself only shrinks when a checkpoint has
 * copied every frame back, so a reclaim ends with a PASSIVE checkpoint (it never waits for a
 * reader; if one holds an old snapshot, the next checkpoint finishes the job).
 *
 * A reclaim is cut into steps of at most `pagesPerStep` pages (one short transaction each) so the
 * maintenance timer can run it between commits without holding the event loop.
 *
 * Free pages are not all given back: the head refills at the ingest rate and would take them
 * again within a minute, growing the file back (and writing every moved page to the WAL twice a
 * minute for nothing). So the reclaimer keeps a reserve equal to what the last two seal runs both
 * freed (their minimum): in a steady state that is one seal interval of head, and after a burst it
 * falls back to the steady size at the next run, so the burst's pages go back. With no ingest at
 * all, the reserve drops to 0 and the file ends up holding only what is stored.
 *
 * The Aggregator uses it for its own database too, with its hourly retention as the "run".
 */
import type { Db } from './schema';

export interface ReclaimOptions {
  /** Most pages one step moves or cuts off. */
  pagesPerStep: number;
}

export class Reclaimer {
  private requested = false;
  private lastFreed = 0;
  private keep = 0;
  private vacuumed = 0;

  constructor(
    private readonly db: Db,
    private readonly counters: { reclaimedPages: number },
    private readonly opts: ReclaimOptions,
  ) {}

  private freePages(): number {
    return this.db.pragma('freelist_count', { simple: true }) as number;
  }

  /** Free pages the reclaimer leaves for the head's next seal interval. */
  get reserve(): number {
    return this.keep;
  }

  /** True while a reclaim has steps left. */
  get busy(): boolean {
    return this.requested;
  }

  /** Called when a run that frees pages (a seal run; the Aggregator's retention) ends, with the pages it put on the free list; starts a reclaim. */
  afterRun(freedPages: number): void {
    const freed = Math.max(0, freedPages);
    this.keep = Math.min(freed, this.lastFreed);
    this.lastFreed = freed;
    this.requested = true;
  }

  /** Starts a reclaim (after retention deleted rows). */
  request(): void {
    this.requested = true;
  }

  /** One bounded step. Returns true if more steps remain. */
  step(): boolean {
    if (!this.requested) return false;
    const excess = this.freePages() - this.keep;
    if (excess > 0) {
      const n = Math.min(excess, this.opts.pagesPerStep);
      this.db.pragma(`incremental_vacuum(${n})`);
      this.vacuumed += n;
      this.counters.reclaimedPages += n;
      if (excess > n) return true;
    }
    this.requested = false;
    if (this.vacuumed > 0) {
      this.vacuumed = 0;
      this.db.pragma('wal_checkpoint(PASSIVE)');
    }
    return false;
  }

  /** Runs a requested reclaim to its end, synchronously (explicit seal/retention, tests, bench). */
  finish(): void {
    while (this.step());
  }
}
