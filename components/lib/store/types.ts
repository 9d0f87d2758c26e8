/** Public types of the time-series store (see docs/store.md). */
import type { Quality } from '../contract/payloads';

/** A series is one point of one asset. */
export interface SeriesKey {
  assetId: string;
  point: string;
}

/** What the Processor appends: one processed value of one point. */
export interface StoreSample extends SeriesKey {
  /** Sample time, integer ms since the epoch. */
  ts: number;
  /** A finite number, or null when there is no value (quality bad / not_implemented). */
  v: number | null;
  q: Quality;
  /**
   * The series' canonical unit (the Processor's), if it has one. The writer keeps the last one
   * given per series in `series.unit` (set when the series is made or its unit changes), so readers
   * get units from `listSeries()` instead of from processed telemetry.
   */
  u?: string | undefined;
}

/** A sample read back. Downsampled results carry `n`, the number of valued samples in the bucket. */
export interface Sample {
  ts: number;
  v: number | null;
  q: Quality;
  n?: number;
}

/** What `tryAppend` did with the samples it was handed. */
export interface AppendResult {
  /** Reported by `onCommit` (and `durableTicket`) once every accepted sample is committed. */
  ticket: number;
  /** Samples taken into the buffer: the ones the ticket covers. */
  accepted: number;
  /** Samples refused: never stored, never durable, whatever ticket is reported later. */
  rejected: number;
  /** `rejected` by reason: disk_full, store_unavailable, or an invalid sample's reason. */
  reasons: Readonly<Record<string, number>>;
}

/** Told to `onCommit` listeners after each durable commit. */
export interface CommitInfo {
  /** Every sample accepted by an `append` that returned a ticket <= this one is now durable. */
  ticket: number;
  /** Samples in the commit, and how many were new (the rest were duplicates already in the head). */
  samples: number;
  inserted: number;
  duplicates: number;
  /**
   * Samples refused (not stored, not durable) by the appends since the previous reported commit,
   * up to `ticket`: non-zero means not everything those appends were handed is in the store.
   */
  rejected: number;
  /** Time the oldest sample of the batch waited in memory before the commit started, ms. */
  waitMs: number;
  /** Duration of the transaction including the fsync, ms. */
  durationMs: number;
  /** Samples of this commit written to the late log (stored more than `lateAfterMs` after their time). */
  lateSamples: number;
  /** The newest id of the late log after this commit (0: none yet). Readers that processed up to a lower id read on from the store. */
  lateLogId: number;
}

/**
 * One row of the late log: samples of one asset, with times from `from` to `to`, that a commit
 * stored more than `lateAfterMs` after their time. Written in the transaction that stored them.
 */
export interface LateLogEntry {
  /** Increasing, never reused within one file (AUTOINCREMENT); see `StoreInfo.storeId`. */
  id: number;
  /** Commit time (writer clock), ms. */
  committedAt: number;
  assetId: string;
  /** Oldest and newest sample time, inclusive, ms. Samples of the asset further apart than a minute are separate entries. */
  from: number;
  to: number;
  /** Late samples the entry stands for (new ones only: a duplicate changes nothing and is not logged). */
  samples: number;
}

/** What a reader learns about the file itself. */
export interface StoreInfo {
  /** Random id the writer gives a file at creation (or at its first open by this build): a new file has another. */
  storeId: string | undefined;
  /** The writer's `lateAfterMs` (undefined: written by a build without the late log). */
  lateAfterMs: number | undefined;
}

export type DownsampleAgg = 'avg' | 'min' | 'max' | 'last';

export interface RangeOptions {
  /** Buckets aligned to multiples of bucketMs since the epoch; one sample per non-empty bucket. */
  downsample?: { bucketMs: number; agg: DownsampleAgg };
}

/** Statistics of a stretch of one series. min..last are over valued samples; null when count is 0. */
export interface Stats {
  /** Samples, including ones without a value. */
  n: number;
  /** Samples with a value. */
  count: number;
  minTs: number;
  maxTs: number;
  min: number | null;
  max: number | null;
  sum: number;
  sumSq: number;
  first: number | null;
  last: number | null;
}

export interface ChunkStatsResult {
  /** Statistics of the chunks wholly inside [from, to], read without decompressing. */
  chunks: Stats[];
  /** The samples in [from, to] that are not in those chunks (partial chunks and the head), sorted. */
  partial: Sample[];
  /** Everything in [from, to] combined. */
  total: Stats;
}

export interface SeriesInfo extends SeriesKey {
  id: number;
  /** The canonical unit the writer was last given for the series; null when none (or an older writer). */
  unit: string | null;
}

export interface StoreCounters {
  appended: number;
  committed: number;
  duplicates: number;
  rejected: Record<string, number>;
  commits: number;
  commitErrors: number;
  sealedSamples: number;
  lateSamples: number;
  chunksWritten: number;
  retentionDeletedChunks: number;
  /** Free pages given back to the file system by the bounded reclaim after seals and retention. */
  reclaimedPages: number;
  /** Samples written to the late log, and its rows written and pruned by retention. */
  lateLogged: number;
  lateLogRows: number;
  lateLogPruned: number;
}
