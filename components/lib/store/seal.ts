/**
 * Sealing: moves head samples older than `sealLagMs` into per-series chunks.
 *
 * Work is cut into slices of `sliceSeries` series, each one transaction (read the slice's head
 * rows, write its chunks, delete exactly those rows), so a seal never holds the event loop for
 * long and the commit window stays bounded while it runs. A crash mid-seal rolls the slice back.
 *
 * Per series, samples newer than its last chunk fill that chunk while it is open (fewer than
 * `chunkSamples` samples and spanning less than `chunkMaxSpanMs`), then start new chunks. Late
 * samples (at or before the last chunk's end) are merged into the chunk whose range holds them,
 * or into the chunk before the gap they fall in (the first chunk if they precede all): the chunk
 * is decoded, merged (a sample already stored wins over a duplicate), re-encoded and, when it
 * grows past 2 x chunkSamples, split. So chunks never overlap and queries stay a simple merge.
 */
import { allocColumns, decodeChunk, encodeChunk, fillNulls, mergeColumns, NULL_FLAG, type Columns } from './chunk';
import { bucketOf, type Db } from './schema';
import type { StoreCounters } from './types';

export interface SealOptions {
  sealLagMs: number;
  chunkSamples: number;
  chunkMaxSpanMs: number;
  sliceSeries: number;
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
}

export class Sealer {
  private run: SealRun | undefined;
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
      buckets: db.prepare('SELECT bucket FROM head WHERE bucket < ? GROUP BY bucket ORDER BY bucket').pluck(),
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
      const buckets = this.st.buckets.all(cutoff) as number[];
      if (buckets.length === 0) {
        this.runsCompleted += 1;
        return false;
      }
      const maxSeries = (this.st.maxSeries.get() as { m: number | null }).m ?? 0;
      this.run = { buckets, nextSeries: 1, maxSeries };
    }
    const run = this.run;
    const from = run.nextSeries;
    const to = from + this.opts.sliceSeries;
    this.db.transaction(() => this.sealSlice(run.buckets, from, to))();
    run.nextSeries = to;
    if (run.nextSeries > run.maxSeries) {
      this.run = undefined;
      this.runsCompleted += 1;
      return false;
    }
    return true;
  }

  private sealSlice(buckets: number[], from: number, to: number): void {
    const perSeries = new Map<number, Array<[number, number, number | null, number]>>();
    for (const b of buckets) {
      for (const row of this.st.sliceRows.all(b, from, to) as Array<[number, number, number | null, number]>) {
        let list = perSeries.get(row[0]);
        if (!list) perSeries.set(row[0], (list = []));
        list.push(row);
      }
    }
    for (const [series, rows] of perSeries) {
      // Rows come per bucket ordered by (series, ts) and buckets ascend, so ts ascend per series.
      const c = allocColumns(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i] as [number, number, number | null, number];
        c.ts[i] = r[1];
        c.v[i] = r[2] ?? 0;
        c.q[i] = r[3] | (r[2] === null ? NULL_FLAG : 0);
      }
      this.sealSeries(series, c);
      this.counters.sealedSamples += c.n;
    }
    for (const b of buckets) this.st.deleteSlice.run(b, from, to);
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
