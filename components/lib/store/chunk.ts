/**
 * One sealed chunk: the samples of one series over a stretch of time, compressed, with the
 * statistics the Aggregator needs stored beside it (so rollups over whole chunks never decode).
 *
 * Blob layout (one bit stream, see gorilla.ts for the columns):
 *   u8 format version (1) | varint n | u8 value mode (0 = XOR, 1 + k = decimal with scale 10^k)
 *   | timestamps | values | quality runs
 *
 * Quality codes are the index in QUALITIES (contract/payloads.ts) plus NULL_FLAG when the sample
 * has no value (a failed read); a null's value slot repeats the previous value so it costs one bit.
 */
import { QUALITIES, type Quality } from '../contract/payloads';
import { BitReader, BitWriter, ChunkCorruptError } from './bits';
import type { Stats } from './types';
import { decimalScale, decodeDecimalValues, decodeRuns, decodeTimestamps, decodeXorValues, encodeDecimalValues, encodeRuns, encodeTimestamps, encodeXorValues } from './gorilla';

export const CHUNK_FORMAT = 1;
export const NULL_FLAG = 8;

export const QUALITY_CODE: Readonly<Record<Quality, number>> = Object.freeze(
  Object.fromEntries(QUALITIES.map((q, i) => [q, i])) as Record<Quality, number>,
);

export function qualityOf(code: number): Quality {
  return QUALITIES[code & 7] ?? 'bad';
}

/** Columns of samples sorted by ts, one per ts. `v` holds a placeholder where q has NULL_FLAG. */
export interface Columns {
  n: number;
  ts: Float64Array;
  v: Float64Array;
  q: Uint8Array;
}

/**
 * Statistics of a chunk. `n` counts samples, `count` the ones with a value; min..last are over
 * values only (null when count is 0). first/last are the values at the first/last valued sample.
 */
export type ChunkStats = Stats;

export function allocColumns(n: number): Columns {
  return { n, ts: new Float64Array(n), v: new Float64Array(n), q: new Uint8Array(n) };
}

export function computeStats(c: Columns, from = 0, to = c.n): ChunkStats {
  let count = 0;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumSq = 0;
  let first: number | null = null;
  let last: number | null = null;
  for (let i = from; i < to; i++) {
    if ((c.q[i] as number) & NULL_FLAG) continue;
    const x = c.v[i] as number;
    count += 1;
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
    sumSq += x * x;
    if (first === null) first = x;
    last = x;
  }
  return {
    n: to - from,
    count,
    minTs: to > from ? (c.ts[from] as number) : 0,
    maxTs: to > from ? (c.ts[to - 1] as number) : 0,
    min: count ? min : null,
    max: count ? max : null,
    sum,
    sumSq,
    first,
    last,
  };
}

function writeHeader(w: BitWriter, n: number, mode: number): void {
  w.write(CHUNK_FORMAT, 8);
  w.varint(n);
  w.write(mode, 8);
}

function encodeWith(c: Columns, from: number, n: number, mode: number): Uint8Array {
  const w = new BitWriter(n * 2 + 32);
  writeHeader(w, n, mode);
  const ts = c.ts.subarray(from, from + n);
  const v = c.v.subarray(from, from + n);
  encodeTimestamps(w, ts, n);
  if (mode === 0) encodeXorValues(w, v, n);
  else encodeDecimalValues(w, v, n, mode - 1);
  encodeRuns(w, c.q.subarray(from, from + n), n);
  return w.finish();
}

/**
 * Encodes samples [from, from + n) of `c` (sorted, unique ts). Null slots must already hold the
 * previous value (see `fillNulls`). Encodes with XOR and, when it applies, decimal mode, and keeps
 * the smaller: sealing is off the hot path, bytes on disk are not.
 */
export function encodeChunk(c: Columns, from = 0, n = c.n - from): { data: Uint8Array; stats: ChunkStats } {
  const stats = computeStats(c, from, from + n);
  let data = encodeWith(c, from, n, 0);
  const k = decimalScale(c.v.subarray(from, from + n), n);
  if (k >= 0) {
    const dec = encodeWith(c, from, n, k + 1);
    if (dec.length < data.length) data = dec;
  }
  return { data, stats };
}

export function decodeChunk(data: Uint8Array): Columns {
  const r = new BitReader(data);
  const version = r.read(8);
  if (version !== CHUNK_FORMAT) throw new ChunkCorruptError(`unknown chunk format ${version}`);
  const n = r.varint();
  if (n > 10_000_000) throw new ChunkCorruptError(`implausible chunk length ${n}`);
  const mode = r.read(8);
  const c = allocColumns(n);
  decodeTimestamps(r, n, c.ts);
  if (mode === 0) decodeXorValues(r, n, c.v);
  else decodeDecimalValues(r, n, mode - 1, c.v);
  decodeRuns(r, n, c.q);
  return c;
}

/** Replaces the value of null samples by the previous value (0 before the first) so they cost 1 bit. */
export function fillNulls(c: Columns): void {
  let prev = 0;
  for (let i = 0; i < c.n; i++) {
    if ((c.q[i] as number) & NULL_FLAG) c.v[i] = prev;
    else prev = c.v[i] as number;
  }
}

/**
 * Merges two sorted column sets, keeping `a`'s sample where both have the same ts: `a` is what is
 * already stored, so a re-appended or duplicate sample never replaces it (first write wins).
 */
export function mergeColumns(a: Columns, b: Columns): { merged: Columns; duplicates: number } {
  const out = allocColumns(a.n + b.n);
  let i = 0;
  let j = 0;
  let k = 0;
  let duplicates = 0;
  while (i < a.n || j < b.n) {
    const ta = i < a.n ? (a.ts[i] as number) : Infinity;
    const tb = j < b.n ? (b.ts[j] as number) : Infinity;
    if (ta <= tb) {
      out.ts[k] = ta;
      out.v[k] = a.v[i] as number;
      out.q[k] = a.q[i] as number;
      i += 1;
      if (ta === tb) {
        j += 1;
        duplicates += 1;
      }
    } else {
      out.ts[k] = tb;
      out.v[k] = b.v[j] as number;
      out.q[k] = b.q[j] as number;
      j += 1;
    }
    k += 1;
  }
  return { merged: { n: k, ts: out.ts.subarray(0, k), v: out.v.subarray(0, k), q: out.q.subarray(0, k) }, duplicates };
}
