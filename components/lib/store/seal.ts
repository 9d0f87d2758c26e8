/**
 * Sealing: moves head samples older than `sealLagMs` into per-series chunks.
 *
 * Work is cut into slices of consecutive series ids, each one transaction (read the slice's head
 * rows, write its chunks, delete exactly those rows), so a seal never holds the event loop for
 * long and the commit window stays bounded while it runs. A crash mid-seal rolls the slice back.
 * A slice holds about `sliceRows` head rows, since its time and memory go with its rows and a
 * fast site has 50x the rows per series of a slow one: its width in series follows the rows per
 * series the previous slice found (starting at one series, at most doubling from one slice to
 * the next, at most `sliceSeries`). Rows are streamed into per-series typed columns (17 bytes a
 * row, outside the V8 heap) rather than read as one JS array per row: at 200k samples/s a
 * 500-series slice used to hold ~600 000 such arrays, ~110 MiB of V8 heap, for seconds.
 *
 * Per series, samples newer than its last chunk fill that chunk while it is open (fewer than
 * `chunkSamples` samples and spanning less than `chunkMaxSpanMs`), then start new chunks. Late
 * samples (at or before the last chunk's end) are merged into the chunk whose range holds them,
 * or into the chunk before the gap they fall in (the first chunk if they precede all): the chunk
 * is decoded, merged (a sample already stored wins over a duplicate), re-encoded and, when it
 * grows past 2 x chunkSamples, split. So chunks never overlap and queries stay a simple merge.
 */
import { decodeChunk, encodeChunk, fillNulls, mergeColumns, NULL_FLAG, type Columns } from './chunk';
import { bucketOf, type Db } from './schema';
import type { StoreCounters } from './types';

export interface SealOptions {
  sealLagMs: number;
  chunkSamples: number;
  chunkMaxSpanMs: number;
  /** Most series in one slice. */
  sliceSeries: number;
  /** Head rows one slice aims at. */
  sliceRows: number;
}

/** One series' head rows in a slice, grown by doubling. */
class ColumnBuilder {
  n = 0;
  ts: Float64Array;
  v: Float64Array;
  q: Uint8Array;

  constructor(capacity: number) {
    this.ts = new Float64Array(capacity);
    this.v = new Float64Array(capacity);
    this.q = new Uint8Array(capacity);
  }

  push(ts: number, v: number | null, q: number): void {
    if (this.n === this.ts.length) {
      const cap = this.n * 2;
      const ts2 = new Float64Array(cap);
      ts2.set(this.ts);
      this.ts = ts2;
      const v2 = new Float64Array(cap);
      v2.set(this.v);
      this.v = v2;
      const q2 = new Uint8Array(cap);
      q2.set(this.q);
      this.q = q2;
    }
    const i = this.n++;
    this.ts[i] = ts;
    this.v[i] = v ?? 0;
    this.q[i] = q | (v === null ? NULL_FLAG : 0);
  }

  columns(): Columns {
    return { n: this.n, ts: this.ts.subarray(0, this.n), v: this.v.subarray(0, this.n), q: this.q.subarray(0, this.n) };
  }
}

interface ChunkRow {
  id: number;
  min_ts: number;
  max_ts: number;
  n: number;
}

interface SealRun {
  buckets: number[];
  nextSeries: number;
  maxSeries: number;
  /** The series range [nextSeries, to) under way, and the first of its buckets not yet sealed. */
  to: number;
  nextBucket: number;
  /** Rows sealed so far in that range (sizes the next range once it is done). */
  rangeRows: number;
}

export class Sealer {
  private run: SealRun | undefined;
  /** Head rows per series id the last slice found; sizes the next slice. */
  private rowsPerSeries = 0;
  private lastWidth = 0;
  /** Rows in the largest slice since the store opened (diagnostics, benchmarks). */
  maxSliceRows = 0;
  /** Seal runs finished since the store opened, including runs that found nothing to seal. */
  runsCompleted = 0;
  private readonly st;

  constructor(
    private readonly db: Db,
    private readonly counters: StoreCounters,
    private readonly opts: SealOptions,
  ) {
    this.st = {
      // ORDER BY on both: SQLite promises no row order without it (the primary key makes it free).
      // The buckets by a loose index scan, one seek per bucket: a GROUP BY reads every head row
      // (12 M rows, 0.57 s holding the event loop, after a minute at 200k samples/s).
      buckets: db
        .prepare(
          `WITH RECURSIVE b(x) AS (
             SELECT (SELECT min(bucket) FROM head WHERE bucket < @cutoff)
             UNION ALL
             SELECT (SELECT min(bucket) FROM head WHERE bucket > b.x AND bucket < @cutoff) FROM b WHERE b.x IS NOT NULL
           )
           SELECT x FROM b WHERE x IS NOT NULL ORDER BY x`,
        )
        .pluck(),
      maxSeries: db.prepare('SELECT max(id) AS m FROM series'),
      sliceRows: db.prepare('SELECT series, ts, v, q FROM head WHERE bucket = ? AND series >= ? AND series < ? ORDER BY series, ts').raw(),
      deleteSlice: db.prepare('DELETE FROM head WHERE bucket = ? AND series >= ? AND series < ?'),
      lastChunk: db.prepare('SELECT id, min_ts, max_ts, n FROM chunk WHERE series = ? ORDER BY max_ts DESC LIMIT 1'),
      atOrAfter: db.prepare('SELECT id, min_ts, max_ts, n FROM chunk WHERE series = ? AND max_ts >= ? ORDER BY max_ts LIMIT 1'),
      before: db.prepare('SELECT id, min_ts, max_ts, n FROM chunk WHERE series = ? AND max_ts < ? ORDER BY max_ts DESC LIMIT 1'),
      data: db.prepare('SELECT data FROM chunk WHERE id = ?').pluck(),
      del: db.prepare('DELETE FROM chunk WHERE id = ?'),
      insert: db.prepare(
        'INSERT INTO chunk (series, min_ts, max_ts, n, count, vmin, vmax, sum, sumsq, first, last, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
    };
  }

  /** True while a seal run has slices left. */
  get busy(): boolean {
    return this.run !== undefined;
  }

  /**
   * Seals one slice, starting a run if none is under way. Returns true if more slices remain.
   * Call repeatedly, yielding between calls (the maintenance timer), or in a loop (`Store.seal`).
   */
  step(now: number): boolean {
    if (!this.run) {
      const cutoff = bucketOf(now - this.opts.sealLagMs);
      const buckets = this.st.buckets.all({ cutoff }) as number[];
      if (buckets.length === 0) {
        this.runsCompleted += 1;
        return false;
      }
      const maxSeries = (this.st.maxSeries.get() as { m: number | null }).m ?? 0;
      this.run = { buckets, nextSeries: 1, maxSeries, to: 0, nextBucket: 0, rangeRows: 0 };
    }
    const run = this.run;
    if (run.nextBucket === 0) {
      run.to = run.nextSeries + this.sliceWidth();
      run.rangeRows = 0;
    }
    const rows = this.db.transaction(() => this.sealSlice(run))();
    run.rangeRows += rows;
    if (rows > this.maxSliceRows) this.maxSliceRows = rows;
    if (run.nextBucket < run.buckets.length) return true; // the same series, later buckets
    const width = run.to - run.nextSeries;
    this.rowsPerSeries = run.rangeRows / width;
    this.lastWidth = width;
    run.nextSeries = run.to;
    run.nextBucket = 0;
    if (run.nextSeries > run.maxSeries) {
      this.run = undefined;
      this.runsCompleted += 1;
      return false;
    }
    return true;
  }

  /** Series in the next slice: about sliceRows rows at the last slice's density. */
  private sliceWidth(): number {
    const max = this.opts.sliceSeries;
    // Nothing known yet (a fresh store): start with one series and double.
    if (this.lastWidth === 0) return 1;
    const want = this.rowsPerSeries > 0 ? Math.floor(this.opts.sliceRows / this.rowsPerSeries) : max;
    return Math.max(1, Math.min(max, this.lastWidth * 2, want));
  }

  /**
   * Seals the run's series range [nextSeries, to) from bucket `nextBucket` on, stopping after the
   * bucket that takes the slice to `sliceRows` (the rest of the range's buckets are the next
   * slice's: sealing a series' older buckets first and its newer ones later is the same as
   * sealing them together). So a slice overshoots by at most one bucket of its range. Returns
   * the head rows sealed.
   */
  private sealSlice(run: SealRun): number {
    const { buckets, nextSeries: from, to } = run;
    const cols: Array<ColumnBuilder | undefined> = [];
    const guess = Math.max(16, Math.min(4096, Math.ceil(this.rowsPerSeries)));
    let rows = 0;
    const first = run.nextBucket;
    let end = first;
    while (end < buckets.length && rows < this.opts.sliceRows) {
      for (const r of this.st.sliceRows.iterate(buckets[end], from, to) as Iterable<[number, number, number | null, number]>) {
        const k = r[0] - from;
        let c = cols[k];
        if (!c) cols[k] = c = new ColumnBuilder(guess);
        c.push(r[1], r[2], r[3]);
        rows += 1;
      }
      end += 1;
    }
    for (let k = 0; k < cols.length; k++) {
      const c = cols[k];
      if (!c) continue;
      // Rows come per bucket ordered by (series, ts) and buckets ascend, so ts ascend per series.
      this.sealSeries(from + k, c.columns());
      this.counters.sealedSamples += c.n;
      cols[k] = undefined;
    }
    for (let i = first; i < end; i++) this.st.deleteSlice.run(buckets[i], from, to);
    run.nextBucket = end;
    return rows;
  }

  private sealSeries(series: number, c: Columns): void {
    const last = this.st.lastChunk.get(series) as ChunkRow | undefined;
    if (!last) {
      this.writeNew(series, c, 0, c.n);
      return;
    }
    // Split into late (ts <= last.max_ts) and fresh (after the last chunk).
    let split = 0;
    while (split < c.n && (c.ts[split] as number) <= last.max_ts) split += 1;
    if (split > 0) {
      this.counters.lateSamples += split;
      this.mergeLate(series, c, split);
    }
    if (split === c.n) return;
    // Fill the last chunk while it is open, then start new ones.
    const lastNow = split > 0 ? (this.st.lastChunk.get(series) as ChunkRow) : last;
    let fill = split;
    const room = this.opts.chunkSamples - lastNow.n;
    while (fill < c.n && fill - split < room && (c.ts[fill] as number) - lastNow.min_ts < this.opts.chunkMaxSpanMs) fill += 1;
    if (fill > split) this.mergeInto(series, lastNow.id, slice(c, split, fill));
    if (fill < c.n) this.writeNew(series, c, fill, c.n);
  }

  /** Groups late samples [0, end) by the chunk that takes them and merges each group. */
  private mergeLate(series: number, c: Columns, end: number): void {
    let i = 0;
    while (i < end) {
      const t = c.ts[i] as number;
      const target = this.targetFor(series, t);
      // Everything up to the next chunk's start (or the end) goes to the same target.
      const next = this.st.atOrAfter.get(series, target.max_ts + 1) as ChunkRow | undefined;
      const limit = next && next.id !== target.id ? next.min_ts : Infinity;
      let j = i + 1;
      while (j < end && (c.ts[j] as number) < limit) j += 1;
      this.mergeInto(series, target.id, slice(c, i, j));
      i = j;
    }
  }

  /** The chunk holding ts, else the one before the gap ts falls in, else the first chunk. */
  private targetFor(series: number, ts: number): ChunkRow {
    const after = this.st.atOrAfter.get(series, ts) as ChunkRow | undefined;
    if (after && after.min_ts <= ts) return after;
    const before = this.st.before.get(series, ts) as ChunkRow | undefined;
    const target = before ?? after;
    if (!target) throw new Error('store invariant: late sample with no chunk');
    return target;
  }

  private mergeInto(series: number, chunkId: number, add: Columns): void {
    const stored = decodeChunk(this.st.data.get(chunkId) as Uint8Array);
    const { merged } = mergeColumns(stored, add);
    this.st.del.run(chunkId);
    if (merged.n <= this.opts.chunkSamples * 2) this.insertChunk(series, merged, 0, merged.n);
    else this.writeNew(series, merged, 0, merged.n);
  }

  /** Writes samples [from, to) as new chunks of at most chunkSamples and chunkMaxSpanMs. */
  private writeNew(series: number, c: Columns, from: number, to: number): void {
    let i = from;
    while (i < to) {
      let j = i + 1;
      const start = c.ts[i] as number;
      while (j < to && j - i < this.opts.chunkSamples && (c.ts[j] as number) - start < this.opts.chunkMaxSpanMs) j += 1;
      this.insertChunk(series, c, i, j);
      i = j;
    }
  }

  private insertChunk(series: number, c: Columns, from: number, to: number): void {
    const part = slice(c, from, to);
    fillNulls(part);
    const { data, stats } = encodeChunk(part);
    this.st.insert.run(series, stats.minTs, stats.maxTs, stats.n, stats.count, stats.min, stats.max, stats.sum, stats.sumSq, stats.first, stats.last, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    this.counters.chunksWritten += 1;
  }
}

function slice(c: Columns, from: number, to: number): Columns {
  return { n: to - from, ts: c.ts.subarray(from, to), v: c.v.subarray(from, to), q: c.q.subarray(from, to) };
}
