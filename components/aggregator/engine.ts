/**
 * Closing buckets (edge-computing-spec.md §5.2 aggregate_1min, with the 15-minute and daily levels
 * of §5.1 built on it) and re-aggregating the buckets late data touched.
 *
 * Watermarks: `progress['1m']` is the end of the last closed minute (all series), `15m` and `1d`
 * likewise. The 1-minute level reads the store's samples (a sealed chunk spans ~12 minutes, so a
 * minute cannot come from whole-chunk statistics); 15 minutes merge fifteen 1-minute rolls and a
 * day merges its 15-minute rolls (92, 96 or 100 of them), never touching the store. Late data is
 * found from processed telemetry older than the watermark (`markLate`) and by the audit, which
 * compares the store's chunk statistics (sample counts, read without decompressing) with ours.
 */
import type { Logger } from '../lib/logger';
import type { ChunkStatsResult, Sample, SeriesInfo, SeriesKey } from '../lib/store';
import type { AggregatorConfig } from './config';
import { SUMMARY, type AggDb, type Level, type SeriesRow } from './db';
import { mergeRolls, rollSamples, type Roll } from './rollup';
import type { LocalDay, Zone } from './tz';

/** What the engine reads from the Processor's store (lib/store StoreReader). */
export interface StoreReading {
  range(key: SeriesKey, fromMs: number, toMs: number): Sample[];
  chunkStats(key: SeriesKey, fromMs: number, toMs: number): ChunkStatsResult;
  listSeries(): SeriesInfo[];
}

export const MINUTE = 60_000;
export const QUARTER = 15 * MINUTE;

export type Yield = () => Promise<void>;

export interface EngineCounters {
  closed1m: number;
  closed15m: number;
  closedDays: number;
  rows: number;
  reaggregated: number;
  lateMarks: number;
  auditMismatches: number;
  samplesRead: number;
}

export class Engine {
  readonly counters: EngineCounters = { closed1m: 0, closed15m: 0, closedDays: 0, rows: 0, reaggregated: 0, lateMarks: 0, auditMismatches: 0, samplesRead: 0 };

  constructor(
    private readonly store: StoreReading,
    private readonly db: AggDb,
    private readonly zone: Zone,
    private readonly cfg: Readonly<AggregatorConfig>,
    private readonly log: Logger,
    private readonly yieldTurn: Yield,
  ) {}

  /** Sets the watermarks on a first start: `initialBackfillMs` of history is rolled up. */
  init(now: number): void {
    if (this.db.progress('1m') !== undefined) return;
    const from = Math.floor((now - this.cfg.initialBackfillMs) / QUARTER) * QUARTER;
    this.db.tx(() => {
      this.db.setProgress('1m', from);
      this.db.setProgress('15m', from);
      this.db.setProgress('1d', this.zone.dayOf(from).start);
      this.db.setProgress('origin', from);
    });
  }

  watermark(level: Level | 'origin'): number {
    return this.db.progress(level) ?? 0;
  }

  /** Series in the store, registered in our database (ids, asset grouping). */
  private syncSeries(): SeriesRow[] {
    const list = this.store.listSeries();
    const missing = list.filter((s) => !this.db.findSeries(s.assetId, s.point));
    if (missing.length) this.db.tx(() => missing.forEach((s) => this.db.series(s.assetId, s.point)));
    return list.map((s) => this.db.series(s.assetId, s.point));
  }

  /** Closes every minute that ended `closeDelayMs` before `now`, then the quarters and days they complete. */
  async close(now: number): Promise<void> {
    const target = Math.floor((now - this.cfg.closeDelayMs) / MINUTE) * MINUTE;
    let from = this.watermark('1m');
    while (from < target) {
      // Windows end on quarter boundaries, so a restart resumes where a window began.
      const to = Math.min(target, Math.floor(from / QUARTER) * QUARTER + QUARTER);
      await this.closeMinutes(from, to);
      this.closeQuarters();
      this.closeDays(now);
      from = to;
    }
    this.closeQuarters();
    this.closeDays(now);
  }

  /** 1-minute rolls of every series for [from, to), committed with the watermark. */
  private async closeMinutes(from: number, to: number): Promise<void> {
    const series = this.syncSeries();
    const rolls: Array<{ s: SeriesRow; start: number; r: Roll }> = [];
    for (let i = 0; i < series.length; i += this.cfg.seriesPerSlice) {
      for (const s of series.slice(i, i + this.cfg.seriesPerSlice)) {
        for (const [start, r] of this.minuteRolls(s, from, to)) rolls.push({ s, start, r });
      }
      if (i + this.cfg.seriesPerSlice < series.length) await this.yieldTurn();
    }
    this.db.tx(() => {
      for (const { s, start, r } of rolls) {
        const res = this.db.upsert('1m', start, s.id, r);
        if (res === 'new' || res === 'changed') {
          this.db.outboxAdd('1m', start, s.asset);
          this.counters.rows += 1;
        }
      }
      this.db.setProgress('1m', to);
    });
    this.counters.closed1m += (to - from) / MINUTE;
  }

  /** Minute rolls of one series over [from, to) from its samples (one read of the store). */
  private minuteRolls(s: SeriesRow, from: number, to: number): Map<number, Roll> {
    const samples = this.store.range({ assetId: s.asset, point: s.point }, from, to - 1);
    this.counters.samplesRead += samples.length;
    const out = new Map<number, Roll>();
    let i = 0;
    while (i < samples.length) {
      const m = Math.floor((samples[i] as Sample).ts / MINUTE) * MINUTE;
      let j = i;
      while (j < samples.length && (samples[j] as Sample).ts < m + MINUTE) j++;
      out.set(m, rollSamples(samples.slice(i, j)));
      i = j;
    }
    return out;
  }

  private closeQuarters(): void {
    const upTo = Math.floor(this.watermark('1m') / QUARTER) * QUARTER;
    for (let q = this.watermark('15m'); q < upTo; q += QUARTER) {
      this.db.tx(() => {
        this.rebuild('15m', q, q + QUARTER);
        this.db.setProgress('15m', q + QUARTER);
      });
      this.counters.closed15m += 1;
    }
  }

  private closeDays(now: number): void {
    for (;;) {
      const d = this.zone.dayOf(this.watermark('1d'));
      if (d.end > this.watermark('15m') || now < d.end + this.cfg.dayCloseDelayMs) return;
      this.db.tx(() => {
        this.rebuildDay(d);
        this.db.setProgress('1d', d.end);
      });
      this.counters.closedDays += 1;
    }
  }

  /** Recomputes a 15-minute or day bucket from the level below, for every series or one asset's. */
  private rebuild(level: '15m' | '1d', start: number, end: number, asset?: string): boolean {
    const below: Level = level === '15m' ? '1m' : '15m';
    const bySid = new Map<number, Roll[]>();
    const sids = asset === undefined ? undefined : this.db.allSeries().filter((s) => s.asset === asset);
    const rows = sids === undefined ? this.db.rows(below, start, end) : sids.flatMap((s) => this.db.rows(below, start, end, s.id));
    for (const r of rows) {
      let l = bySid.get(r.sid);
      if (!l) bySid.set(r.sid, (l = []));
      l.push(r);
    }
    const byId = this.db.seriesById();
    let changed = false;
    for (const [sid, parts] of bySid) {
      const res = this.db.upsert(level, start, sid, mergeRolls(parts));
      if (res === 'new' || res === 'changed') {
        this.db.outboxAdd(level, start, byId.get(sid)?.asset ?? '');
        this.counters.rows += 1;
        changed = true;
      }
    }
    return changed;
  }

  private rebuildDay(d: LocalDay, asset?: string): void {
    const changed = this.rebuild('1d', d.start, d.end, asset);
    const prev = this.db.day(d.start);
    if (!prev) this.db.putDay(d.start, d.end, d.day, 0);
    else if (changed) this.db.putDay(d.start, d.end, d.day, prev.rev + 1);
    if (!prev || changed) this.db.outboxAdd(SUMMARY, d.start, '');
  }

  /**
   * Re-aggregates the minutes in `marks` (asset -> minute starts) that are already closed, and the
   * quarters and days above them. Returns the minutes whose roll changed.
   */
  reaggregate(marks: ReadonlyMap<string, ReadonlySet<number>>): number {
    const closed1m = this.watermark('1m');
    const closed15 = this.watermark('15m');
    const closedDay = this.watermark('1d');
    const origin = this.watermark('origin');
    const series = this.syncSeries();
    let changedMinutes = 0;
    for (const [asset, minutes] of marks) {
      const mine = series.filter((s) => s.asset === asset);
      const quarters = new Set<number>();
      this.db.tx(() => {
        for (const m of minutes) {
          if (m >= closed1m || m < origin) continue;
          let changed = false;
          for (const s of mine) {
            const r = this.minuteRolls(s, m, m + MINUTE).get(m);
            if (!r) continue;
            const res = this.db.upsert('1m', m, s.id, r);
            if (res === 'new' || res === 'changed') changed = true;
          }
          if (!changed) continue;
          changedMinutes += 1;
          this.db.outboxAdd('1m', m, asset);
          const q = Math.floor(m / QUARTER) * QUARTER;
          if (q + QUARTER <= closed15) quarters.add(q);
        }
        const days = new Map<number, LocalDay>();
        for (const q of quarters) {
          if (!this.rebuild('15m', q, q + QUARTER, asset)) continue;
          const d = this.zone.dayOf(q);
          if (d.end <= closedDay) days.set(d.start, d);
        }
        for (const d of days.values()) this.rebuildDay(d, asset);
      });
    }
    this.counters.reaggregated += changedMinutes;
    return changedMinutes;
  }

  /**
   * Audit for late data the subscription did not report (a restart, a dropped message): per series,
   * the store's sample count over the closed quarters of the late window (chunk statistics, no
   * decompression for whole chunks) against the count in our 15-minute rows; where the store has
   * more, per quarter, and the mismatching quarters' minutes are returned for `reaggregate`.
   */
  async audit(now: number): Promise<Map<string, Set<number>>> {
    const to = this.watermark('15m');
    // Nothing before the first watermark (`origin`) was ever rolled up; it is not late data.
    const from = Math.max(Math.floor((now - this.cfg.lateWindowMs) / QUARTER) * QUARTER, this.watermark('origin'));
    const marks = new Map<string, Set<number>>();
    if (from >= to) return marks;
    const ours = this.db.samplesBySeries('15m', from, to);
    const series = this.syncSeries();
    for (let i = 0; i < series.length; i++) {
      const s = series[i] as SeriesRow;
      const key = { assetId: s.asset, point: s.point };
      if (this.store.chunkStats(key, from, to - 1).total.n > (ours.get(s.id) ?? 0)) {
        const per = new Map(this.db.rows('15m', from, to, s.id).map((r) => [r.start, r.n]));
        for (let q = from; q < to; q += QUARTER) {
          if (this.store.chunkStats(key, q, q + QUARTER - 1).total.n <= (per.get(q) ?? 0)) continue;
          this.counters.auditMismatches += 1;
          let set = marks.get(s.asset);
          if (!set) marks.set(s.asset, (set = new Set()));
          for (let m = q; m < q + QUARTER; m += MINUTE) set.add(m);
        }
      }
      if ((i + 1) % this.cfg.seriesPerSlice === 0) await this.yieldTurn();
    }
    if (marks.size) this.log.info('audit found late data', { assets: marks.size, quarters: this.counters.auditMismatches });
    return marks;
  }

  /** Retention of rollups (spec §5.1: 1-minute rows 30 days at the edge). */
  retention(now: number): { deleted: number } {
    let deleted = 0;
    this.db.tx(() => {
      deleted += this.db.prune('1m', now - this.cfg.retention1mMs);
      deleted += this.db.prune('15m', now - this.cfg.retention15mMs);
      deleted += this.db.prune('1d', now - this.cfg.retention1dMs);
      this.db.pruneDays(now - this.cfg.retention1dMs);
    });
    return { deleted };
  }
}
