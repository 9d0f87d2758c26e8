/**
 * Closing buckets (dCMMS edge specification §5.2 aggregate_1min, with the 15-minute and daily
 * levels of §5.1 built on it; docs/specification.md) and re-aggregating the buckets late data
 * touched.
 *
 * Watermarks: `progress['1m']` is the end of the last closed minute (all series), `15m` and `1d`
 * likewise. The 1-minute level reads the store's samples (a sealed chunk spans ~12 minutes, so a
 * minute cannot come from whole-chunk statistics); 15 minutes merge fifteen 1-minute rolls and a
 * day merges its 15-minute rolls (92, 96 or 100 of them), never touching the store. Late data comes
 * from the store's late log (`lateMarks` turns entries into closed minutes, `reaggregate` redoes
 * them); `progress['lateLog']` is the id of the last entry done, written in the same transaction.
 */
import type { LateLogEntry, Sample, StoreReader } from '../lib/store';
import type { AggregatorConfig } from './config';
import { SUMMARY, type AggDb, type Level, type SeriesRow } from './db';
import { mergeRolls, rollSamples, type Roll } from './rollup';
import type { LocalDay, Zone } from './tz';

/** What the engine reads from the Processor's store: the store's read-only reader. */
export type StoreReading = Pick<StoreReader, 'range' | 'listSeries' | 'lateLogHead' | 'lateLog' | 'info'>;

export const MINUTE = 60_000;
export const QUARTER = 15 * MINUTE;

export type Yield = () => Promise<void>;

export interface EngineCounters {
  closed1m: number;
  closed15m: number;
  closedDays: number;
  rows: number;
  /** Closed minutes (per asset) whose rolls late data changed. */
  reaggregated: number;
  /** Late-log entries read. */
  lateEntries: number;
  samplesRead: number;
}

export class Engine {
  readonly counters: EngineCounters = { closed1m: 0, closed15m: 0, closedDays: 0, rows: 0, reaggregated: 0, lateEntries: 0, samplesRead: 0 };

  constructor(
    private readonly store: StoreReading,
    private readonly db: AggDb,
    private readonly zone: Zone,
    private cfg: Readonly<AggregatorConfig>,
    private readonly yieldTurn: Yield,
  ) {}

  /** A new configuration, used from the next call on (retention, delays, slices). */
  configure(cfg: Readonly<AggregatorConfig>): void {
    this.cfg = cfg;
  }

  /**
   * Sets the watermarks on a first start: `initialBackfillMs` of history is rolled up. The late log
   * starts at its head: whatever it holds was committed before the first close reads the store.
   */
  init(now: number): void {
    if (this.db.progress('1m') !== undefined) return;
    const from = Math.floor((now - this.cfg.initialBackfillMs) / QUARTER) * QUARTER;
    const head = this.store.lateLogHead();
    this.db.tx(() => {
      this.db.setProgress('1m', from);
      this.db.setProgress('15m', from);
      this.db.setProgress('1d', this.zone.dayOf(from).start);
      this.db.setProgress('origin', from);
      this.db.setProgress('lateLog', head);
    });
  }

  watermark(level: Level | 'origin'): number {
    return this.db.progress(level) ?? 0;
  }

  /** Series in the store, registered in our database (ids, asset grouping), with the store's units. */
  private syncSeries(): SeriesRow[] {
    const list = this.store.listSeries();
    const stale = list.filter((s) => {
      const ours = this.db.findSeries(s.assetId, s.point);
      return !ours || (s.unit !== null && s.unit !== ours.unit);
    });
    if (stale.length) {
      this.db.tx(() => {
        for (const s of stale) {
          const ours = this.db.series(s.assetId, s.point);
          if (s.unit !== null) this.db.setUnit(ours, s.unit);
        }
      });
    }
    return list.map((s) => this.db.series(s.assetId, s.point));
  }

  /** Closes every minute that ended `closeDelayMs` before `now` (or `delayMs`), then the quarters and days they complete. */
  async close(now: number, delayMs = this.cfg.closeDelayMs): Promise<void> {
    const target = Math.floor((now - delayMs) / MINUTE) * MINUTE;
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

  /** Recomputes a 15-minute or day bucket from the level below, for every series or the given ones (one asset's). */
  private rebuild(level: '15m' | '1d', start: number, end: number, only?: readonly SeriesRow[]): boolean {
    const below: Level = level === '15m' ? '1m' : '15m';
    const bySid = new Map<number, Roll[]>();
    const rows = only === undefined ? this.db.rows(below, start, end) : only.flatMap((s) => this.db.rows(below, start, end, s.id));
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

  private rebuildDay(d: LocalDay, only?: readonly SeriesRow[]): void {
    const changed = this.rebuild('1d', d.start, d.end, only);
    const prev = this.db.day(d.start);
    if (!prev) this.db.putDay(d.start, d.end, d.day, 0);
    else if (changed) this.db.putDay(d.start, d.end, d.day, prev.rev + 1);
    if (!prev || changed) this.db.outboxAdd(SUMMARY, d.start, '');
  }

  /**
   * The closed minutes late-log entries cover, by asset: those a close has read before the entry's
   * samples were committed. Minutes not closed yet are left to the close (it reads the store after
   * the entry, so it sees the samples); minutes before the first watermark (`origin`) or older than
   * the 1-minute retention have no rows to correct.
   */
  lateMarks(entries: readonly LateLogEntry[], now: number): Map<string, Set<number>> {
    const closed = this.watermark('1m');
    const lowest = Math.max(this.watermark('origin'), Math.ceil((now - this.cfg.retention1mMs) / MINUTE) * MINUTE);
    const marks = new Map<string, Set<number>>();
    for (const e of entries) {
      const from = Math.max(lowest, Math.floor(e.from / MINUTE) * MINUTE);
      const to = Math.min(closed - MINUTE, Math.floor(e.to / MINUTE) * MINUTE);
      if (from > to) continue;
      let set = marks.get(e.assetId);
      if (!set) marks.set(e.assetId, (set = new Set()));
      for (let m = from; m <= to; m += MINUTE) set.add(m);
    }
    this.counters.lateEntries += entries.length;
    return marks;
  }

  /**
   * Re-aggregates the minutes in `marks` (asset -> minute starts) that are already closed, and the
   * quarters and days above them, in one transaction with `within` (the late-log position). Each
   * series is read once per run of consecutive minutes. Returns the minutes whose roll changed.
   */
  reaggregate(marks: ReadonlyMap<string, ReadonlySet<number>>, within?: () => void): number {
    const closed1m = this.watermark('1m');
    const closed15 = this.watermark('15m');
    const closedDay = this.watermark('1d');
    const origin = this.watermark('origin');
    const series = marks.size ? this.syncSeries() : [];
    let changedMinutes = 0;
    this.db.tx(() => {
      for (const [asset, minutes] of marks) {
        const mine = series.filter((s) => s.asset === asset);
        const changed = new Set<number>();
        for (const [from, to] of runs([...minutes].filter((m) => m < closed1m && m >= origin))) {
          for (const s of mine) {
            for (const [m, r] of this.minuteRolls(s, from, to)) {
              const res = this.db.upsert('1m', m, s.id, r);
              if (res === 'new' || res === 'changed') changed.add(m);
            }
          }
        }
        const quarters = new Set<number>();
        for (const m of changed) {
          changedMinutes += 1;
          this.db.outboxAdd('1m', m, asset);
          const q = Math.floor(m / QUARTER) * QUARTER;
          if (q + QUARTER <= closed15) quarters.add(q);
        }
        const days = new Map<number, LocalDay>();
        for (const q of [...quarters].sort((a, b) => a - b)) {
          if (!this.rebuild('15m', q, q + QUARTER, mine)) continue;
          const d = this.zone.dayOf(q);
          if (d.end <= closedDay) days.set(d.start, d);
        }
        for (const d of days.values()) this.rebuildDay(d, mine);
      }
      within?.();
    });
    this.counters.reaggregated += changedMinutes;
    return changedMinutes;
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

/** Sorted minute starts -> [from, to) runs of consecutive minutes. */
function runs(minutes: number[]): Array<[number, number]> {
  minutes.sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  for (const m of minutes) {
    const last = out[out.length - 1];
    if (last && last[1] === m) last[1] = m + MINUTE;
    else out.push([m, m + MINUTE]);
  }
  return out;
}
