/**
 * Reads for the Aggregator, Analytics, ML and the `query` CLI. Every read runs in one read
 * transaction, so it sees one snapshot: a seal moving samples from the head into chunks in
 * another process (WAL) can neither hide them nor show them twice.
 *
 * A series' answer is its chunks (non-overlapping, in time order) merged with its head rows. A
 * head row with the same ts as a chunk sample is a late duplicate not yet sealed; the chunk's
 * sample wins, as it will when the seal merges them.
 */
import { decodeChunk, NULL_FLAG, qualityOf } from './chunk';
import { bucketOf, hasColumn, hasTable, type Db } from './schema';
import type { ChunkStatsResult, LateLogEntry, RangeOptions, Sample, SeriesInfo, SeriesKey, Stats, StoreInfo } from './types';

interface ChunkRow {
  min_ts: number;
  max_ts: number;
  n: number;
  count: number;
  vmin: number | null;
  vmax: number | null;
  sum: number;
  sumsq: number;
  first: number | null;
  last: number | null;
  data: Uint8Array;
}

type HeadRow = [number, number | null, number];
type Statement = import('better-sqlite3').Statement<unknown[]>;

interface Acc {
  count: number;
  n: number;
  sum: number;
  min: number;
  max: number;
  last: number | null;
  lastTs: number;
}

function statsOf(r: ChunkRow): Stats {
  return { n: r.n, count: r.count, minTs: r.min_ts, maxTs: r.max_ts, min: r.vmin, max: r.vmax, sum: r.sum, sumSq: r.sumsq, first: r.first, last: r.last };
}

export function emptyStats(): Stats {
  return { n: 0, count: 0, minTs: 0, maxTs: 0, min: null, max: null, sum: 0, sumSq: 0, first: null, last: null };
}

/** Combines statistics of consecutive, non-overlapping stretches given in time order. */
export function combineStats(parts: Stats[]): Stats {
  const out = emptyStats();
  for (const p of parts) {
    if (p.n === 0) continue;
    if (out.n === 0) out.minTs = p.minTs;
    out.maxTs = p.maxTs;
    out.n += p.n;
    if (p.count > 0) {
      out.count += p.count;
      out.sum += p.sum;
      out.sumSq += p.sumSq;
      out.min = out.min === null || (p.min as number) < out.min ? p.min : out.min;
      out.max = out.max === null || (p.max as number) > out.max ? p.max : out.max;
      if (out.first === null) out.first = p.first;
      out.last = p.last;
    }
  }
  return out;
}

export function statsOfSamples(samples: Sample[]): Stats {
  return combineStats(
    samples.map((s) =>
      s.v === null
        ? { ...emptyStats(), n: 1, minTs: s.ts, maxTs: s.ts }
        : { n: 1, count: 1, minTs: s.ts, maxTs: s.ts, min: s.v, max: s.v, sum: s.v, sumSq: s.v * s.v, first: s.v, last: s.v },
    ),
  );
}

export class Reader {
  private readonly st;
  private readonly ids = new Map<string, number>();
  /**
   * Statements on what a file made by an older writer lacks (series.unit, late_log): prepared once
   * the writer has added it (it migrates the file when it opens it, possibly while we read).
   */
  private units: { list: Statement } | undefined;
  private late: { head: Statement; after: Statement } | undefined;

  constructor(private readonly db: Db) {
    this.st = {
      series: db.prepare('SELECT id FROM series WHERE asset = ? AND point = ?').pluck(),
      list: db.prepare('SELECT id, asset AS assetId, point, NULL AS unit FROM series ORDER BY asset, point'),
      meta: db.prepare("SELECT key, value FROM meta WHERE key IN ('storeId', 'lateAfterMs')"),
      chunks: db.prepare('SELECT min_ts, max_ts, n, count, vmin, vmax, sum, sumsq, first, last, data FROM chunk WHERE series = ? AND max_ts >= ? AND min_ts <= ? ORDER BY max_ts'),
      // A loose index scan: hop from one head bucket to the next present one, then seek
      // (bucket, series). The head holds about a minute, so this is a few dozen seeks.
      head: db
        .prepare(
          `WITH RECURSIVE b(x) AS (
             SELECT (SELECT min(bucket) FROM head WHERE bucket >= @fb AND bucket <= @tb)
             UNION ALL
             SELECT (SELECT min(bucket) FROM head WHERE bucket > b.x AND bucket <= @tb) FROM b WHERE b.x IS NOT NULL
           )
           SELECT h.ts, h.v, h.q FROM b JOIN head h ON h.bucket = b.x AND h.series = @id WHERE h.ts >= @from AND h.ts <= @to`,
        )
        .raw(),
      allChunks: db.prepare('SELECT data FROM chunk WHERE series = ? ORDER BY max_ts').pluck(),
      allHead: db.prepare('SELECT ts FROM head WHERE series = ?').pluck(),
    };
  }

  seriesId(key: SeriesKey): number | undefined {
    const k = `${key.assetId}\u0000${key.point}`;
    let id = this.ids.get(k);
    if (id === undefined) {
      id = this.st.series.get(key.assetId, key.point) as number | undefined;
      if (id !== undefined) this.ids.set(k, id);
    }
    return id;
  }

  listSeries(): SeriesInfo[] {
    if (!this.units && hasColumn(this.db, 'series', 'unit')) this.units = { list: this.db.prepare('SELECT id, asset AS assetId, point, unit FROM series ORDER BY asset, point') };
    return (this.units?.list ?? this.st.list).all() as SeriesInfo[];
  }

  private lateStatements(): Reader['late'] {
    if (!this.late && hasTable(this.db, 'late_log')) {
      this.late = {
        // sqlite_sequence keeps the highest id ever given, also after retention pruned the rows.
        head: this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'late_log'").pluck(),
        after: this.db.prepare('SELECT id, committed_at AS committedAt, asset AS assetId, from_ts AS "from", to_ts AS "to", samples FROM late_log WHERE id > ? ORDER BY id LIMIT ?'),
      };
    }
    return this.late;
  }

  /** Newest late-log id ever written (0: none, or a file without a late log). */
  lateLogHead(): number {
    return (this.lateStatements()?.head.get() as number | undefined) ?? 0;
  }

  /** Late-log entries after `afterId`, oldest first. */
  lateLog(afterId: number, limit = 1000): LateLogEntry[] {
    const st = this.lateStatements();
    return st ? (st.after.all(afterId, Math.max(1, Math.floor(limit))) as LateLogEntry[]) : [];
  }

  info(): StoreInfo {
    const m = new Map((this.st.meta.all() as Array<{ key: string; value: string }>).map((r) => [r.key, r.value]));
    const late = m.get('lateAfterMs');
    return { storeId: m.get('storeId'), lateAfterMs: late === undefined ? undefined : Number(late) };
  }

  private headRows(id: number, from: number, to: number): HeadRow[] {
    const rows = this.st.head.all({ fb: bucketOf(from), tb: bucketOf(to), id, from, to }) as HeadRow[];
    for (let i = 1; i < rows.length; i++) {
      if ((rows[i] as HeadRow)[0] < (rows[i - 1] as HeadRow)[0]) return rows.sort((a, b) => a[0] - b[0]);
    }
    return rows;
  }

  /** The samples of one series with from <= ts <= to, oldest first; optionally downsampled. */
  range(key: SeriesKey, from: number, to: number, opts: RangeOptions = {}): Sample[] {
    const id = this.seriesId(key);
    if (id === undefined || to < from) return [];
    const ds = opts.downsample;
    if (ds && !(Number.isInteger(ds.bucketMs) && ds.bucketMs > 0)) throw new RangeError('downsample.bucketMs must be a positive integer');
    return this.db.transaction(() => {
      const chunks = this.st.chunks.all(id, from, to) as ChunkRow[];
      const head = this.headRows(id, from, to);
      if (!ds) return merge(decodeRange(chunks, from, to), head);
      const accs = new Map<number, Acc>();
      const decode: ChunkRow[] = [];
      for (const c of chunks) {
        const b = Math.floor(c.min_ts / ds.bucketMs);
        const whole = c.min_ts >= from && c.max_ts <= to && b === Math.floor(c.max_ts / ds.bucketMs) && !headWithin(head, c.min_ts, c.max_ts);
        if (whole) addStats(accs, b * ds.bucketMs, c);
        else decode.push(c);
      }
      for (const s of merge(decodeRange(decode, from, to), head)) addSample(accs, Math.floor(s.ts / ds.bucketMs) * ds.bucketMs, s);
      return [...accs.entries()].sort((a, b) => a[0] - b[0]).map(([ts, a]) => finish(ts, a, ds.agg));
    })();
  }

  /** Statistics over [from, to]: whole chunks from their stored statistics, the rest as samples. */
  chunkStats(key: SeriesKey, from: number, to: number): ChunkStatsResult {
    const id = this.seriesId(key);
    if (id === undefined || to < from) return { chunks: [], partial: [], total: emptyStats() };
    return this.db.transaction(() => {
      const rows = this.st.chunks.all(id, from, to) as ChunkRow[];
      const head = this.headRows(id, from, to);
      const whole: ChunkRow[] = [];
      const partialChunks: ChunkRow[] = [];
      for (const c of rows) {
        if (c.min_ts >= from && c.max_ts <= to && !headWithin(head, c.min_ts, c.max_ts)) whole.push(c);
        else partialChunks.push(c);
      }
      const partial = merge(decodeRange(partialChunks, from, to), head);
      // Interleave whole-chunk stats and partial samples in time order for first/last.
      const parts: Stats[] = [];
      let p = 0;
      for (const c of whole) {
        const before: Sample[] = [];
        while (p < partial.length && (partial[p] as Sample).ts < c.min_ts) before.push(partial[p++] as Sample);
        if (before.length) parts.push(statsOfSamples(before));
        parts.push(statsOf(c));
      }
      if (p < partial.length) parts.push(statsOfSamples(partial.slice(p)));
      return { chunks: whole.map(statsOf), partial, total: combineStats(parts) };
    })();
  }

  /** Every stored timestamp of a series, duplicates included (tests and diagnostics). */
  rawTimestamps(key: SeriesKey): { chunk: number[]; head: number[] } {
    const id = this.seriesId(key);
    if (id === undefined) return { chunk: [], head: [] };
    return this.db.transaction(() => {
      const chunk: number[] = [];
      for (const data of this.st.allChunks.all(id) as Uint8Array[]) chunk.push(...decodeChunk(data).ts);
      return { chunk, head: this.st.allHead.all(id) as number[] };
    })();
  }
}

function headWithin(head: HeadRow[], from: number, to: number): boolean {
  // head is sorted; binary search for the first row >= from.
  let lo = 0;
  let hi = head.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((head[mid] as HeadRow)[0] < from) lo = mid + 1;
    else hi = mid;
  }
  return lo < head.length && (head[lo] as HeadRow)[0] <= to;
}

function decodeRange(chunks: ChunkRow[], from: number, to: number): Sample[] {
  const out: Sample[] = [];
  for (const row of chunks) {
    const c = decodeChunk(row.data);
    for (let i = 0; i < c.n; i++) {
      const ts = c.ts[i] as number;
      if (ts < from || ts > to) continue;
      const q = c.q[i] as number;
      out.push({ ts, v: q & NULL_FLAG ? null : (c.v[i] as number), q: qualityOf(q) });
    }
  }
  return out;
}

/** Merges chunk samples and head rows by ts; on equal ts the chunk's sample wins. */
function merge(chunk: Sample[], head: HeadRow[]): Sample[] {
  if (head.length === 0) return chunk;
  const out: Sample[] = [];
  let i = 0;
  for (const [ts, v, q] of head) {
    while (i < chunk.length && (chunk[i] as Sample).ts < ts) out.push(chunk[i++] as Sample);
    if (i < chunk.length && (chunk[i] as Sample).ts === ts) continue;
    out.push({ ts, v, q: qualityOf(q) });
  }
  while (i < chunk.length) out.push(chunk[i++] as Sample);
  return out;
}

function acc(accs: Map<number, Acc>, b: number): Acc {
  let a = accs.get(b);
  if (!a) accs.set(b, (a = { count: 0, n: 0, sum: 0, min: Infinity, max: -Infinity, last: null, lastTs: -Infinity }));
  return a;
}

function addStats(accs: Map<number, Acc>, b: number, c: ChunkRow): void {
  const a = acc(accs, b);
  a.n += c.n;
  if (c.count === 0) return;
  a.count += c.count;
  a.sum += c.sum;
  a.min = Math.min(a.min, c.vmin as number);
  a.max = Math.max(a.max, c.vmax as number);
  if (c.max_ts > a.lastTs) {
    a.last = c.last;
    a.lastTs = c.max_ts;
  }
}

function addSample(accs: Map<number, Acc>, b: number, s: Sample): void {
  const a = acc(accs, b);
  a.n += 1;
  if (s.v === null) return;
  a.count += 1;
  a.sum += s.v;
  if (s.v < a.min) a.min = s.v;
  if (s.v > a.max) a.max = s.v;
  if (s.ts > a.lastTs) {
    a.last = s.v;
    a.lastTs = s.ts;
  }
}

function finish(ts: number, a: Acc, agg: 'avg' | 'min' | 'max' | 'last'): Sample {
  if (a.count === 0) return { ts, v: null, q: 'bad', n: 0 };
  const v = agg === 'avg' ? a.sum / a.count : agg === 'min' ? a.min : agg === 'max' ? a.max : a.last;
  return { ts, v, q: 'good', n: a.count };
}
