/**
 * Per-asset and per-series state the pipeline keeps between messages: last sample time and value
 * (duplicate removal, interpolation, alarm rules), the asset's poll period (learned), and a short
 * memory of recent message times so that a re-delivered older message is recognised as a
 * duplicate (a duplicate is the same asset, point and sample time; docs/processor.md step 6).
 */
import type { Quality } from '../../lib/contract';

export type ValueKind = 'number' | 'string' | 'boolean';

export interface SeriesState {
  readonly point: string;
  /** Sample time of the newest sample seen (any quality); -Infinity before the first. */
  lastTs: number;
  /** Its canonical numeric value when it had one (and was not `bad`), else null. */
  lastNum: number | null;
  /** Its value as published (number, symbol name, boolean), for alarm rules on strings. */
  lastValue: number | string | boolean | null;
  lastQ: Quality;
  /** Learned from the first valued sample; a later sample of another kind is rejected `wrong_type`. */
  kind: ValueKind | undefined;
  /** Slot for the alarm engine's bindings of this series (alarms/engine.ts). */
  alarm: unknown;
}

/** Distinct recent message times remembered per asset for out-of-order duplicate checks. */
export const RECENT_MESSAGES = 64;
/** Consecutive message intervals the period estimate looks at. */
const PERIOD_WINDOW = 8;

export class AssetState {
  readonly series = new Map<string, SeriesState>();
  /** Newest message time accepted in order. */
  lastTs = -Infinity;
  /** Sequence number of the processed stream this Processor publishes for the asset. */
  outSeq = 0;
  private readonly recent = new Map<number, readonly string[]>();
  private readonly deltas: number[] = [];
  private deltaAt = 0;

  constructor(readonly id: string) {}

  getSeries(point: string): SeriesState | undefined {
    return this.series.get(point);
  }

  addSeries(point: string): SeriesState {
    const s: SeriesState = { point, lastTs: -Infinity, lastNum: null, lastValue: null, lastQ: 'good', kind: undefined, alarm: undefined };
    this.series.set(point, s);
    return s;
  }

  /** True when a message at `ts` already carried `point` (only consulted for out-of-order samples). */
  seen(ts: number, point: string): boolean {
    return this.recent.get(ts)?.includes(point) ?? false;
  }

  /** Remember a message's time and point names; learn the period from in-order intervals. */
  remember(ts: number, points: readonly string[], inOrder: boolean): void {
    const prev = this.recent.get(ts);
    this.recent.set(ts, prev ? [...prev, ...points] : points);
    if (this.recent.size > RECENT_MESSAGES) {
      const oldest = this.recent.keys().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
    if (!inOrder) return;
    if (Number.isFinite(this.lastTs)) {
      const d = ts - this.lastTs;
      if (this.deltas.length < PERIOD_WINDOW) this.deltas.push(d);
      else this.deltas[this.deltaAt] = d;
      this.deltaAt = (this.deltaAt + 1) % PERIOD_WINDOW;
    }
    this.lastTs = ts;
  }

  /**
   * The poll period: the smallest of the last few intervals (a gap makes one interval long; the
   * others still show the period). Undefined until two intervals were seen.
   */
  periodMs(): number | undefined {
    if (this.deltas.length < 2) return undefined;
    let min = Infinity;
    for (const d of this.deltas) if (d > 0 && d < min) min = d;
    return Number.isFinite(min) ? min : undefined;
  }
}
